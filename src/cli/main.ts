/**
 * The `cairn` command line. Invalid flags or values print a clear message and exit with code 2.
 */
import { Command, CommanderError } from 'commander';
import { ObjectStoreError } from '../object-store/index.ts';
import { StartupError } from '../server.ts';
import { serveCommand } from './serve-command.ts';

/** Exit code for usage errors (invalid flag or value), as most Unix tools use. */
export const EXIT_USAGE = 2;

export async function main(argv: string[]): Promise<void> {
  const program = new Command('cairn')
    .description('Cairn: a Durable Streams server with a crash-safe write-ahead log')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addCommand(serveCommand());
  for (const command of program.commands) command.exitOverride().showHelpAfterError('(run with --help for usage)');
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const helpOrVersion = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      process.exit(helpOrVersion ? 0 : EXIT_USAGE);
    }
    // Failures an operator must fix get their message; anything else is a bug: show the stack.
    const known = error instanceof StartupError || error instanceof ObjectStoreError;
    process.stderr.write(`cairn: ${known ? (error as Error).message : ((error as Error).stack ?? String(error))}\n`);
    process.exit(1);
  }
}

await main(process.argv);
