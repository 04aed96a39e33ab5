#!/usr/bin/python3
"""render_chat.py - renders a chat template with Jinja2, as transformers does.

usage: render_chat.py TEMPLATE.jinja BOS EOS ADD_GENERATION_PROMPT(0|1) ROLE=CONTENT...
Prints the rendered text, or "RAISES: message" when the template refuses the
conversation (raise_exception).
"""
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(Exception):
    pass


def raise_exception(msg):
    raise TemplateError(msg)


def main():
    path, bos, eos, gen = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    messages = []
    for arg in sys.argv[5:]:
        role, _, content = arg.partition("=")
        messages.append({"role": role, "content": content.replace("\\n", "\n")})
    # transformers: trim_blocks and lstrip_blocks on, a sandboxed environment
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    source = open(path, encoding="utf-8").read()
    if source.endswith("\n"):
        source = source[:-1]  # the file's final newline is not part of the template
    try:
        out = env.from_string(source).render(messages=messages, bos_token=bos, eos_token=eos, add_generation_prompt=gen)
    except TemplateError as e:
        out = "RAISES: " + str(e)
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
