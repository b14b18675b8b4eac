/**
 * Topic names and subscription patterns. Pure functions, no state.
 *
 * A topic is a name of 1–256 characters without control characters, `*` or `#`, in segments
 * separated by `/` (`config/db/primary`); no segment is `.` or `..` (they read as "this" and
 * "the parent" in URLs and paths, so such a topic could not be named unambiguously). A pattern
 * is one of:
 *   - exact: a topic name (`config/db/primary`);
 *   - prefix: ends with `/` and matches every topic that starts with it (`config/`);
 *   - wildcard: has `*` segments (exactly one segment) and/or a `**` segment (zero or more
 *     segments), e.g. `config/* /primary` without the space, `config/**`, `**` (everything).
 */
import { FerryError, RESERVED_NAMES } from 'ferrymq/model';

const TOPIC_MAX_LENGTH = 256;
const SEGMENT_SEPARATOR = '/';
const ONE_SEGMENT = '*';
const ANY_SEGMENTS = '**';
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_TOPIC = /[\u0000-\u001f\u007f*#]/;
// eslint-disable-next-line no-control-regex
const FORBIDDEN_IN_PATTERN = /[\u0000-\u001f\u007f#]/;

export type TopicPattern =
  | { kind: 'exact'; source: string; topic: string }
  | { kind: 'prefix'; source: string; prefix: string }
  | { kind: 'wildcard'; source: string; segments: string[]; prefix: string };

/** True when a segment of `name` is `.` or `..`. */
function hasReservedSegment(name: string): boolean {
  return name.split(SEGMENT_SEPARATOR).some((seg) => RESERVED_NAMES.includes(seg));
}

export function isValidTopic(topic: unknown): topic is string {
  return (
    typeof topic === 'string' &&
    topic.length > 0 &&
    topic.length <= TOPIC_MAX_LENGTH &&
    !FORBIDDEN_IN_TOPIC.test(topic) &&
    !hasReservedSegment(topic)
  );
}

/** Throws INVALID_TOPIC unless `topic` is a valid topic name. */
export function checkTopic(topic: unknown): string {
  if (!isValidTopic(topic)) {
    throw new FerryError(
      'INVALID_TOPIC',
      `invalid topic ${JSON.stringify(typeof topic === 'string' ? topic.slice(0, 60) : topic)}: ` +
        `1–${TOPIC_MAX_LENGTH} characters, no control characters, * or #, no . or .. segment`,
    );
  }
  return topic;
}

/** Parses a subscription pattern; throws INVALID_TOPIC when it is not one. */
export function parsePattern(source: unknown): TopicPattern {
  if (
    typeof source !== 'string' ||
    source.length === 0 ||
    source.length > TOPIC_MAX_LENGTH ||
    FORBIDDEN_IN_PATTERN.test(source) ||
    hasReservedSegment(source)
  ) {
    throw new FerryError(
      'INVALID_TOPIC',
      `invalid pattern ${JSON.stringify(typeof source === 'string' ? source.slice(0, 60) : source)}: ` +
        `1–${TOPIC_MAX_LENGTH} characters, no control characters or #, no . or .. segment`,
    );
  }
  if (!source.includes(ONE_SEGMENT)) {
    return source.endsWith(SEGMENT_SEPARATOR)
      ? { kind: 'prefix', source, prefix: source }
      : { kind: 'exact', source, topic: source };
  }
  const segments = source.split(SEGMENT_SEPARATOR);
  let anySeen = false;
  for (const seg of segments) {
    if (seg.includes(ONE_SEGMENT) && seg !== ONE_SEGMENT && seg !== ANY_SEGMENTS) {
      throw new FerryError(
        'INVALID_TOPIC',
        `invalid pattern ${JSON.stringify(source.slice(0, 60))}: * and ** must be whole segments`,
      );
    }
    if (seg === ANY_SEGMENTS) {
      if (anySeen) {
        throw new FerryError(
          'INVALID_TOPIC',
          `invalid pattern ${JSON.stringify(source.slice(0, 60))}: at most one ** segment`,
        );
      }
      anySeen = true;
    }
  }
  // The literal part before the first wildcard segment narrows a retained-state scan.
  const literal: string[] = [];
  for (const seg of segments) {
    if (seg === ONE_SEGMENT || seg === ANY_SEGMENTS) break;
    literal.push(seg);
  }
  const prefix = literal.length === 0 ? '' : literal.join(SEGMENT_SEPARATOR) + SEGMENT_SEPARATOR;
  return { kind: 'wildcard', source, segments, prefix };
}

/** A pattern matching every topic that starts with `prefix` (Clone subtrees; '' = all). */
export function prefixPattern(prefix: string): TopicPattern {
  return { kind: 'prefix', source: prefix, prefix };
}

/** The literal start every matching topic has ('' when any topic may match). */
export function scanPrefix(p: TopicPattern): string {
  if (p.kind === 'exact') return p.topic;
  return p.prefix;
}

export function matches(p: TopicPattern, topic: string): boolean {
  switch (p.kind) {
    case 'exact':
      return topic === p.topic;
    case 'prefix':
      return topic.startsWith(p.prefix);
    case 'wildcard':
      return matchSegments(p.segments, 0, topic.split(SEGMENT_SEPARATOR), 0);
  }
}

function matchSegments(pat: string[], i: number, top: string[], j: number): boolean {
  while (i < pat.length) {
    const seg = pat[i]!;
    if (seg === ANY_SEGMENTS) {
      if (i === pat.length - 1) return true;
      for (let k = j; k <= top.length; k++) {
        if (matchSegments(pat, i + 1, top, k)) return true;
      }
      return false;
    }
    if (j >= top.length) return false;
    if (seg !== ONE_SEGMENT && seg !== top[j]) return false;
    i++;
    j++;
  }
  return j === top.length;
}
