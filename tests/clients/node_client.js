// node-postgres (pg 8) against a server: the simple protocol, parameters
// (the extended protocol, text format), named prepared statements run
// repeatedly, pg's type parsers (int8 and numeric as strings, dates,
// timestamptz, arrays, json), errors with their SQLSTATE and a
// transaction. Prints one line per result, so the output for Amber and
// for PostgreSQL 15 can be compared (tests/tests/clients.rs).
//
//     NODE_PATH=<dir with pg> node tests/clients/node_client.js CONNECTION_STRING SCHEMA
const { Client } = require("pg");

async function main() {
  const [url, schema] = process.argv.slice(2);
  const c = new Client({ connectionString: url });
  await c.connect();
  const print = (what, rows) => console.log(`${what}: ${JSON.stringify(rows)}`);
  const q = (text, values) => c.query(text, values);

  await q(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await q(`CREATE SCHEMA ${schema}`);
  await q(`CREATE TABLE ${schema}.account (id bigint PRIMARY KEY, name text NOT NULL,
           balance numeric, opened date, seen timestamptz, tags text[], extra jsonb, ok boolean)`);
  // Parameters as node-postgres sends them: all text, types inferred.
  for (const [id, name, balance, opened, seen, tags, extra, ok] of [
    [1, "it's", "150.50", "2024-01-02", "2024-01-02T03:04:05.678Z", ["a", "b c"], { k: [1, 2] }, true],
    [2, "Grace", null, null, null, [], null, false],
    [3, "Ada", "1e3", "2024-03-04", "2024-03-04T00:00:00Z", null, { n: null }, null],
  ]) {
    await q(`INSERT INTO ${schema}.account VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [id, name, balance, opened, seen, tags, extra, ok]);
  }
  const all = await q(`SELECT id, name, balance, opened, seen, tags, extra, ok
                       FROM ${schema}.account ORDER BY id`);
  print("fields", all.fields.map((f) => [f.name, f.dataTypeID]));
  // Dates parse in the process's time zone: print them as ISO strings.
  print("rows", all.rows.map((r) => ({ ...r, opened: r.opened && r.opened.toISOString(),
    seen: r.seen && r.seen.toISOString() })));
  print("simple", (await q(`SELECT count(*), sum(balance) FROM ${schema}.account`)).rows);
  print("any", (await q(`SELECT id FROM ${schema}.account WHERE id = ANY($1) ORDER BY id`, [[1, 3]])).rows);
  // A named prepared statement, parsed once and run five times.
  const named = [];
  for (let i = 1; i <= 5; i++) {
    const r = await c.query({ name: "by_id", text: `SELECT name, balance FROM ${schema}.account WHERE id = $1`,
      values: [((i - 1) % 3) + 1] });
    named.push(r.rows[0]);
  }
  print("named", named);
  // An array of rows; rowMode array.
  print("array mode", (await c.query({ text: "SELECT 1 AS a, 'x' AS b, NULL::int AS c", rowMode: "array" })).rows);
  try {
    await q(`INSERT INTO ${schema}.account (id, name) VALUES ($1, $2)`, [1, "dup"]);
    print("duplicate", "no error");
  } catch (e) {
    print("duplicate", [e.code, e.constraint || null]);
  }
  try {
    await q(`SELECT $1::int`, ["x"]);
  } catch (e) {
    print("bad int", e.code);
  }
  // A transaction rolled back leaves nothing.
  await q("BEGIN");
  await q(`UPDATE ${schema}.account SET balance = balance + $1 WHERE id = $2`, ["1", 1]);
  const mid = await q(`SELECT balance FROM ${schema}.account WHERE id = 1`);
  await q("ROLLBACK");
  const after = await q(`SELECT balance FROM ${schema}.account WHERE id = 1`);
  print("transaction", [mid.rows[0].balance, after.rows[0].balance]);
  const up = await q(`UPDATE ${schema}.account SET ok = NOT ok WHERE ok IS NOT NULL`);
  print("update", [up.command, up.rowCount]);
  await c.end();
}

main().catch((e) => {
  console.error(`error: ${e.code || ""} ${e.message}`);
  process.exit(1);
});
