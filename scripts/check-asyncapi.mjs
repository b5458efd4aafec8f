// Parse AsyncAPI documents with the official parser and print its diagnostics.
//
// Usage: node check-asyncapi.mjs FILE...   (run by scripts/check-asyncapi.sh, which
// installs @asyncapi/parser next to a copy of this file).
// Prints each diagnostic as `file:line:col severity code message [json-path]`
// (1-based line and column), then `ok: FILE (N warnings)` for a document without errors.
// Exits 1 if any document has an error or did not parse.
//
// Besides the parser's own rules it checks two things the AsyncAPI 3.0 JSON Schema
// cannot (codes `wfs-*`): WebSocket bindings other than on channels (the ws operation,
// message and server bindings are empty objects in the spec, so the parser accepts
// anything there), and a ws `query` that is not an object schema with `properties`
// (required by the binding's prose only).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';

// DiagnosticSeverity of @stoplight/types: 0 error, 1 warning, 2 information, 3 hint.
const SEVERITY = ['error', 'warning', 'info', 'hint'];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check-asyncapi.mjs FILE...');
  process.exit(2);
}

const parser = new Parser();

// Project rules; `raw` is the document as written (bindings placement, so a message
// reached through a $ref is reported once, where it is defined), `resolved` has its
// $refs resolved (binding schemas). Returns diagnostics shaped like the parser's.
function wfsDiagnostics(raw, resolved, spectralDocument) {
  const found = [];
  const report = (code, message, jsonPath) => {
    const range = spectralDocument?.getRangeForJsonPath(jsonPath, true) ?? {
      start: { line: 0, character: 0 },
    };
    found.push({ code, message, path: jsonPath, severity: 0, range });
  };
  const entries = (obj) => Object.entries(obj && typeof obj === 'object' ? obj : {});
  const notOnChannel = (item, jsonPath) => {
    if (item?.bindings?.ws !== undefined) {
      report('wfs-ws-binding-on-channel', `WebSocket bindings belong on the channel, not on ${jsonPath.at(-2)}`, [...jsonPath, 'bindings', 'ws']);
    }
  };

  for (const section of ['servers', 'operations']) {
    for (const [key, item] of entries(raw?.[section])) notOnChannel(item, [section, key]);
    for (const [key, item] of entries(raw?.components?.[section])) notOnChannel(item, ['components', section, key]);
  }
  for (const [key, item] of entries(raw?.components?.messages)) notOnChannel(item, ['components', 'messages', key]);
  for (const [channelKey, channel] of entries(raw?.channels)) {
    for (const [key, item] of entries(channel?.messages)) notOnChannel(item, ['channels', channelKey, 'messages', key]);
  }

  for (const [key, channel] of entries(resolved?.channels)) {
    const ws = channel?.bindings?.ws;
    for (const field of ['query', 'headers']) {
      const schema = ws?.[field];
      if (schema === undefined) continue;
      if (schema?.type !== 'object' || typeof schema.properties !== 'object') {
        report('wfs-ws-binding-object-schema', `the ws "${field}" binding must be a schema of type object with properties`, ['channels', key, 'bindings', 'ws', field]);
      }
    }
  }
  return found;
}
let failed = false;

for (const file of files) {
  const source = path.resolve(file);
  let text;
  try {
    text = await readFile(source, 'utf8');
  } catch (err) {
    console.log(`${file}:1:1 error read ${err.message}`);
    failed = true;
    continue;
  }

  let output;
  try {
    output = await parser.parse(text, { source });
  } catch (err) {
    console.log(`${file}:1:1 error parser ${err && err.message ? err.message : err}`);
    failed = true;
    continue;
  }

  const extra = output.document
    ? wfsDiagnostics(output.extras?.document?.data, output.document.json(), output.extras?.document)
    : [];
  const diagnostics = [...output.diagnostics, ...extra].sort(
    (a, b) =>
      a.range.start.line - b.range.start.line ||
      a.range.start.character - b.range.start.character,
  );
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 0) errors += 1;
    if (d.severity === 1) warnings += 1;
    // A diagnostic may come from another file reached through a $ref.
    const where =
      d.source && path.resolve(d.source) !== source ? path.relative(process.cwd(), d.source) : file;
    const line = d.range.start.line + 1;
    const col = d.range.start.character + 1;
    const severity = SEVERITY[d.severity] ?? `severity${d.severity}`;
    const at = d.path && d.path.length > 0 ? ` [#/${d.path.join('/')}]` : '';
    console.log(`${where}:${line}:${col} ${severity} ${d.code} ${d.message}${at}`);
  }

  if (errors > 0 || output.document === undefined) {
    console.log(`FAILED: ${file} (${errors} errors, ${warnings} warnings)`);
    failed = true;
  } else {
    console.log(`ok: ${file} (${warnings} warnings)`);
  }
}

process.exit(failed ? 1 : 0);
