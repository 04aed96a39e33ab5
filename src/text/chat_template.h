/* chat_template.h - turning a conversation into the prompt text a chat model
 * was trained on.
 *
 * Models ship a Jinja template in `tokenizer.chat_template`. airlock
 * recognises the template family from its text and renders the family's
 * format in C, reproducing what the Jinja template produces (tests render
 * the real templates with Jinja2 and compare). Families: llama2, llama3,
 * llama3.1 (Llama 3.1, 3.2 and 3.3 instruct: a system turn always, opening
 * with the knowledge cut-off and today's date), chatml (Qwen, SmolLM, ...;
 * including a default system prompt the template inserts), mistral, phi3,
 * gemma, deepseek (DeepSeek LLM chat), deepseek3 (DeepSeek V2/V3/R1). */
#ifndef AIRLOCK_TEXT_CHAT_TEMPLATE_H
#define AIRLOCK_TEXT_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum chat_format {
    CHAT_UNKNOWN = 0,
    CHAT_LLAMA2,
    CHAT_LLAMA3,
    CHAT_CHATML,
    CHAT_MISTRAL,
    CHAT_PHI3,
    CHAT_GEMMA,
    CHAT_DEEPSEEK,
    CHAT_DEEPSEEK3,
    CHAT_LLAMA31,
} chat_format;

typedef struct chat_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} chat_message;

typedef struct chat_template {
    chat_format format;
    char *default_system; /* system prompt the template adds when none is given, or NULL */
    char *system_header;  /* llama3.1: the lines that open the system turn ("Cutting Knowledge Date: ...\nToday Date: ...\n\n") */
    char *bos, *eos;      /* the model's BOS/EOS text as the template writes them */
} chat_template;

/* Recognises a template's family from its Jinja text. Returns CHAT_UNKNOWN
 * when it is not one of the supported families. */
chat_format chat_format_detect(const char *jinja);

/* Family by name ("chatml", "llama3", ...); CHAT_UNKNOWN if none. */
chat_format chat_format_from_name(const char *name);
const char *chat_format_name(chat_format f);
/* "llama2, llama3, chatml, ..." for messages. */
const char *chat_format_names(void);

/* Builds a template from the model's Jinja text (may be NULL) or, when
 * force_name is given, from that family. bos/eos are the texts of the model's
 * BOS/EOS tokens. Returns 0, or -1 with err explaining that the template is
 * not recognised and how to choose a family. */
int chat_template_init(chat_template *t, const char *jinja, const char *force_name, const char *bos, const char *eos,
                       al_err *err);
void chat_template_free(chat_template *t);

/* Renders the conversation. add_assistant appends the header that starts the
 * assistant's turn. Returns a malloc'd string, or NULL with err set. */
char *chat_template_apply(const chat_template *t, const chat_message *msgs, size_t n, bool add_assistant, al_err *err);

#endif
