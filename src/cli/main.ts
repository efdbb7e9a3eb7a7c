/**
 * The `cairn` command line. Invalid flags, values or configuration print a clear message and exit
 * with code 2 (EXIT_USAGE); the client commands' other exit codes are in ./exit-codes.ts.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/settings.ts';
import { ObjectStoreError } from '../object-store/index.ts';
import { StartupError } from '../server.ts';
import { configCommand } from './config-command.ts';
import { serveCommand } from './serve-command.ts';

/** Exit code for usage errors (invalid flag, value or configuration), as most Unix tools use. */
export const EXIT_USAGE = 2;

function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('cairn')
    .description('Cairn: a Durable Streams server with a crash-safe write-ahead log')
    .addCommand(serveCommand())
    .addCommand(configCommand());
  for (const command of everyCommand(program)) command.exitOverride().showHelpAfterError('(run with --help for usage)');
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const helpOrVersion = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      process.exit(helpOrVersion ? 0 : EXIT_USAGE);
    }
    if (error instanceof ConfigError) {
      for (const line of error.message.split('\n')) process.stderr.write(`cairn: ${line}\n`);
      process.exit(EXIT_USAGE);
    }
    // Failures an operator must fix get their message; anything else is a bug: show the stack.
    const known = error instanceof StartupError || error instanceof ObjectStoreError;
    process.stderr.write(`cairn: ${known ? (error as Error).message : ((error as Error).stack ?? String(error))}\n`);
    process.exit(1);
  }
}

await main(process.argv);
