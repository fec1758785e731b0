// SPDX-License-Identifier: Apache-2.0
/** The same request as the Playground's, for a terminal or the OpenAI Python SDK. */
import { chatBody, type ChatParams } from "./chat";

const KEY_PLACEHOLDER = "$POTLUCK_API_KEY";

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'"'"'`)}'`;
}

export function curlSnippet(origin: string, params: ChatParams): string {
  const body = JSON.stringify(chatBody(params), null, 2);
  return [
    `curl -N ${origin}/v1/chat/completions \\`,
    `  -H "Authorization: Bearer ${KEY_PLACEHOLDER}" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(body)}`,
  ].join("\n");
}

function pyString(text: string): string {
  return JSON.stringify(text);
}

export function pythonSnippet(origin: string, params: ChatParams): string {
  const messages = params.messages
    .map((m) => `        {"role": ${pyString(m.role)}, "content": ${pyString(m.content)}},`)
    .join("\n");
  return [
    "import os",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${pyString(`${origin}/v1`)}, api_key=os.environ["POTLUCK_API_KEY"])`,
    "stream = client.chat.completions.create(",
    `    model=${pyString(params.model)},`,
    "    messages=[",
    messages,
    "    ],",
    `    temperature=${params.temperature},`,
    ...(params.max_tokens === undefined ? [] : [`    max_tokens=${params.max_tokens},`]),
    "    stream=True,",
    '    stream_options={"include_usage": True},',
    ")",
    "for chunk in stream:",
    "    if chunk.choices and chunk.choices[0].delta.content:",
    '        print(chunk.choices[0].delta.content, end="", flush=True)',
  ].join("\n");
}
