// compare.mjs A.parquet B.parquet: prints the rows of each file that the
// other lacks (as a multiset: EXCEPT ALL, both ways) and the row counts,
// as one JSON line. Used by bench/attendance to check that Vigie's output
// holds the same rows as DuckDB's, whatever the encodings.
import { DuckDBInstance } from '@duckdb/node-api';

const [a, b] = process.argv.slice(2);
const q = (s) => "'" + s.replaceAll("'", "''") + "'";
const db = await DuckDBInstance.create(':memory:', { threads: '2' });
const conn = await db.connect();
const one = async (sql) => Number((await (await conn.run(sql)).getRows())[0][0]);
const out = {
  rows_a: await one(`SELECT count(*) FROM read_parquet(${q(a)})`),
  rows_b: await one(`SELECT count(*) FROM read_parquet(${q(b)})`),
  only_a: await one(`SELECT count(*) FROM (SELECT * FROM read_parquet(${q(a)}) EXCEPT ALL SELECT * FROM read_parquet(${q(b)}))`),
  only_b: await one(`SELECT count(*) FROM (SELECT * FROM read_parquet(${q(b)}) EXCEPT ALL SELECT * FROM read_parquet(${q(a)}))`),
};
console.log(JSON.stringify(out));
