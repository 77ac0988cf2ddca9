import { runJsonStatReader } from "../reader.js";
process.exitCode = await runJsonStatReader();
