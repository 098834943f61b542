// `materialize-worker.mjs <path> <base> <cacheRoot>`: one materializeBaseline call in a real process (run
// as another user by the shared-cache test). Prints the result, or {"error": {code, message, path}}, and
// the warnings, as one JSON line.
import { materializeBaseline } from "../../dist/index.js";

const [path, base, cacheRoot] = process.argv.slice(2);
const warnings = [];
try {
  const result = await materializeBaseline({
    path,
    base,
    cacheRoot,
    onWarning: (message) => warnings.push(message),
  });
  process.stdout.write(`${JSON.stringify({ result, warnings })}\n`);
} catch (error) {
  const { code, message, path: where } = error;
  process.stdout.write(
    `${JSON.stringify({ error: { name: error.name, code, message, path: where }, warnings })}\n`,
  );
}
