// One contender of the race test: waits for "go" on stdin, materializes, prints the result as JSON.
import { materializeBaseline } from "../dist/index.js";

const [path, cacheRoot] = process.argv.slice(2);
process.stdout.write("ready\n");
process.stdin.once("data", async () => {
  try {
    const result = await materializeBaseline({ path, cacheRoot });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${error?.stack ?? error}\n`);
    process.exit(1);
  }
});
