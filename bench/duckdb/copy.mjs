// copy.mjs CSV PARQUET THREADS: DuckDB's side of bench/attendance, the same
// job as the Vigie pipeline: read the CSV, add rate and flag, write zstd
// Parquet. Run by the benchmark under its timer; prints nothing on success.
import { DuckDBInstance } from '@duckdb/node-api';

const [csv, parquet, threads] = process.argv.slice(2);
const q = (s) => "'" + s.replaceAll("'", "''") + "'";
const db = await DuckDBInstance.create(':memory:', { threads: String(threads || 2) });
const conn = await db.connect();
await conn.run(
  `COPY (SELECT *, absent_half_days / half_days AS rate, rate >= 0.1 AS flag FROM read_csv(${q(csv)})) ` +
    `TO ${q(parquet)} (FORMAT parquet, COMPRESSION zstd)`,
);
