// Builds an AssemblyScript rule with the Vigie SDK:
//   node build.mjs examples/absence.ts out.wasm
// (npm run build -- examples/absence.ts out.wasm). Runtime stub, abort
// routed to vigie.fail, start function exported as _initialize, so the
// module imports nothing but vigie.fail.
import asc from "assemblyscript/asc";

const [entry, out] = process.argv.slice(2);
if (!entry || !out) {
  console.error("usage: node build.mjs ENTRY.ts OUT.wasm");
  process.exit(2);
}
const { error, stderr } = await asc.main([
  entry, "--outFile", out,
  "--runtime", "stub",
  "--use", "abort=assembly/vigie/vigieAbort",
  "--exportStart", "_initialize",
  "-O3", "--noAssert",
]);
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}
