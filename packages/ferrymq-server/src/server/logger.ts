/**
 * The server's logger: one line per event on stderr, leveled, in one of two formats:
 * - `text` (default): `<ISO time> <LEVEL> <message> {fields as JSON}`, for people;
 * - `json`: one JSON object a line from pino (`level`, `time`, `msg`, the fields), for log
 *   collectors (`--log-format json`, config `logFormat`, `FERRY_LOG_FORMAT`).
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../core/logger.js';
import type { LogFormat, LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

type Level = Exclude<LogLevel, 'silent'>;
type Emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => void;

export interface LoggerOptions {
  /** Line format; `text` unless given. */
  format?: LogFormat | undefined;
  /** Where lines go; stderr unless given. */
  write?: ((line: string) => void) | undefined;
}

function textEmitter(level: LogLevel, write: (line: string) => void): Emit {
  const min = ORDER[level];
  return (lvl, msg, fields) => {
    if (ORDER[lvl] < min) return;
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${extra}\n`);
  };
}

function jsonEmitter(level: LogLevel, write: ((line: string) => void) | undefined): Emit {
  // Synchronous to stderr: a line logged just before process.exit is not lost.
  const destination: DestinationStream = write
    ? { write }
    : pino.destination({ fd: process.stderr.fd, sync: true });
  const p: PinoLogger = pino(
    { level, base: { pid: process.pid, name: 'ferry' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  );
  return (lvl, msg, fields) => p[lvl](fields ?? {}, msg);
}

/** Loggers made here, with a way to switch their format once the config is known. */
const formatSetters = new WeakMap<Logger, (format: LogFormat) => void>();

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const write = options.write;
  const make = (format: LogFormat): Emit =>
    format === 'json'
      ? jsonEmitter(level, write)
      : textEmitter(level, write ?? ((l) => process.stderr.write(l)));
  let current: LogFormat = options.format ?? 'text';
  let emit = make(current);
  const logger: Logger = {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
  formatSetters.set(logger, (format) => {
    if (format === current) return;
    current = format;
    emit = make(format);
  });
  return logger;
}

/**
 * Switches a logger made by {@link createLogger} to `format` (the server applies the
 * configured `logFormat` to the logger it is given); other loggers are left as they are.
 */
export function applyLogFormat(logger: Logger, format: LogFormat): void {
  formatSetters.get(logger)?.(format);
}
