/** `npm run ingest:regional_cpi`: load raw.regional_cpi from its JSON-stat dataset. */

import { REGIONAL_CPI } from "../catalog.js";
import { runJsonStatSource } from "../program.js";

process.exitCode = await runJsonStatSource(REGIONAL_CPI);
