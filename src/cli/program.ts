/**
 * The `cairn` command line (started by ./main.ts). Invalid flags, values or configuration print a clear message and exit
 * with code 2 (EXIT_USAGE); every exit code is in ./exit-codes.ts.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/settings.ts';
import { clientCommands } from './client/commands.ts';
import { clusterCommand } from './cluster-command.ts';
import { CliError, EXIT_USAGE } from './exit-codes.ts';
import { configCommand } from './config-command.ts';
import { serveCommand } from './serve-command.ts';
import { verifyCommand } from './verify-command.ts';
import { recoverCommand } from './recover-command.ts';

function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('cairn')
    .description('Cairn: a Durable Streams server with a crash-safe write-ahead log')
    .addCommand(serveCommand())
    .addCommand(configCommand())
    .addCommand(verifyCommand())
    .addCommand(recoverCommand())
    .addCommand(clusterCommand());
  for (const command of clientCommands()) program.addCommand(command);
  // `cairn read … | head` closes stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  for (const command of everyCommand(program)) command.exitOverride().showHelpAfterError('(run with --help for usage)');
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      const helpOrVersion = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
      process.exit(helpOrVersion ? 0 : EXIT_USAGE);
    }
    if (error instanceof CliError) {
      process.stderr.write(`cairn: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    if (error instanceof ConfigError) {
      for (const line of error.message.split('\n')) process.stderr.write(`cairn: ${line}\n`);
      process.exit(EXIT_USAGE);
    }
    // Known failures are CliErrors (startup problems included, see serve-command.ts); anything else is a bug: show the stack.
    process.stderr.write(`cairn: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

