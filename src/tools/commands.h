/* commands.h - the airlock subcommands. Each takes argc/argv starting at the
 * subcommand name and returns the process exit status. */
#ifndef AIRLOCK_TOOLS_COMMANDS_H
#define AIRLOCK_TOOLS_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_kl_divergence(int argc, char **argv);

#endif
