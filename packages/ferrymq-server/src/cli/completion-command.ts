/**
 * `ferry completion bash|zsh`: a shell completion script built from the command tree, so it
 * always knows every command, subcommand and flag of this version.
 */
import type { Command } from 'commander';
import { oneOf, subcommand } from './cli-support.js';

const SHELLS = ['bash', 'zsh'] as const;
/** The key of the top level in the generated tables. */
const ROOT_KEY = 'ferry';

interface Node {
  /** "ferry", "ferry dlq", … */
  key: string;
  subcommands: string[];
  flags: string[];
}

function walk(cmd: Command, key: string, out: Node[]): void {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
  out.push({ key, subcommands: subs.map((c) => c.name()), flags: [...flags, '--help'] });
  for (const s of subs) walk(s, `${key} ${s.name()}`, out);
}

function quote(words: string[]): string {
  return `'${words.join(' ')}'`;
}

function bashScript(nodes: Node[]): string {
  const entries = nodes
    .map(
      (n) =>
        `  _ferry_subs[${quote([n.key])}]=${quote(n.subcommands)}\n  _ferry_flags[${quote([n.key])}]=${quote(n.flags)}`,
    )
    .join('\n');
  return `# ferry completion for bash: source <(ferry completion bash)
declare -gA _ferry_subs _ferry_flags
${entries}
_ferry() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" node=${ROOT_KEY} i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ " \${_ferry_subs[$node]} " == *" $w "* ]]; then node="$node $w"; fi
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "\${_ferry_flags[$node]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${_ferry_subs[$node]}" -- "$cur"))
  fi
}
complete -o default -F _ferry ferry
`;
}

function zshScript(nodes: Node[]): string {
  const entries = nodes
    .map(
      (n) =>
        `  _ferry_subs[${quote([n.key])}]=${quote(n.subcommands)}\n  _ferry_flags[${quote([n.key])}]=${quote(n.flags)}`,
    )
    .join('\n');
  return `#compdef ferry
# ferry completion for zsh: source <(ferry completion zsh)   (after compinit)
typeset -gA _ferry_subs _ferry_flags
${entries}
_ferry() {
  local node=${ROOT_KEY} w
  for w in \${words[2,CURRENT-1]}; do
    if [[ " \${_ferry_subs[$node]} " == *" $w "* ]]; then node="$node $w"; fi
  done
  if [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- \${=_ferry_flags[$node]}
  else
    compadd -- \${=_ferry_subs[$node]}
  fi
}
compdef _ferry ferry
`;
}

export function registerCompletion(program: Command): void {
  subcommand(program, 'completion', 'print a shell completion script (bash or zsh)')
    .argument('<shell>', SHELLS.join(' or '), oneOf(SHELLS))
    .addHelpText(
      'after',
      '\nbash: source <(ferry completion bash)    (or save it in /etc/bash_completion.d/ferry)\n' +
        'zsh:  source <(ferry completion zsh)     (after compinit)',
    )
    .action((shell: (typeof SHELLS)[number]) => {
      const nodes: Node[] = [];
      walk(program, ROOT_KEY, nodes);
      process.stdout.write(shell === 'bash' ? bashScript(nodes) : zshScript(nodes));
    });
}
