/* cmd_run.c - placeholder until the model runner lands (see models/). */
#include <stdio.h>
#include "tools/commands.h"
int cmd_run(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "airlock run: not built yet\n");
    return 1;
}
