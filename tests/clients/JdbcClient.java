// pgjdbc against a running server: DatabaseMetaData (what DBeaver,
// Metabase and every JDBC tool list tables with) and a prepared statement
// run past pgjdbc's prepareThreshold (5), when it switches to a named
// server-side statement and binary results.
//
//   java -cp /usr/share/java/postgresql.jar JdbcClient.java JDBC_URL SCHEMA
//
// Prints one line per fact, sorted within each group; tests/tests/clients.rs
// runs it against Amber and PostgreSQL 15 and compares the lines.
import java.sql.*;
import java.util.*;

public class JdbcClient {
    static List<String> rows(ResultSet rs, String... columns) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            StringBuilder b = new StringBuilder();
            for (String c : columns) {
                b.append(c).append('=').append(rs.getString(c)).append(' ');
            }
            out.add(b.toString().trim());
        }
        Collections.sort(out);
        return out;
    }

    static void print(String what, List<String> lines) {
        for (String l : lines) {
            System.out.println(what + ": " + l);
        }
    }

    public static void main(String[] args) throws Exception {
        String schema = args[1];
        try (Connection c = DriverManager.getConnection(args[0])) {
            DatabaseMetaData md = c.getMetaData();
            List<String> schemas = rows(md.getSchemas(), "TABLE_SCHEM");
            print("schema", schemas.contains("TABLE_SCHEM=" + schema)
                ? List.of(schema) : List.of("missing " + schema));
            print("table", rows(md.getTables(null, schema, "%", null),
                "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"));
            print("column", rows(md.getColumns(null, schema, "%", "%"),
                "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME", "NULLABLE",
                "COLUMN_DEF", "ORDINAL_POSITION", "IS_NULLABLE", "IS_AUTOINCREMENT"));
            for (String t : new String[] {"account", "customer"}) {
                print("pk " + t, rows(md.getPrimaryKeys(null, schema, t),
                    "COLUMN_NAME", "KEY_SEQ", "PK_NAME"));
                print("imported " + t, rows(md.getImportedKeys(null, schema, t),
                    "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_NAME", "FKCOLUMN_NAME", "FK_NAME"));
                print("exported " + t, rows(md.getExportedKeys(null, schema, t),
                    "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_NAME", "FKCOLUMN_NAME"));
                print("index " + t, rows(md.getIndexInfo(null, schema, t, false, false),
                    "NON_UNIQUE", "INDEX_NAME", "ORDINAL_POSITION", "COLUMN_NAME"));
            }
            print("function", rows(md.getFunctions(null, schema, "%"), "FUNCTION_NAME"));
            print("procedure", rows(md.getProcedures(null, schema, "%"), "PROCEDURE_NAME"));
            List<String> types = rows(md.getTypeInfo(), "TYPE_NAME", "DATA_TYPE");
            List<String> common = new ArrayList<>();
            for (String t : types) {
                for (String n : new String[] {"int8", "text", "numeric", "bool", "date", "timestamptz", "float8", "bytea"}) {
                    if (t.startsWith("TYPE_NAME=" + n + " ")) {
                        common.add(t);
                    }
                }
            }
            print("type", common);
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, balance, opened FROM " + schema + ".account WHERE id = ?")) {
                for (int i = 0; i < 8; i++) {
                    ps.setLong(1, 1 + (i % 2));
                    try (ResultSet rs = ps.executeQuery()) {
                        print("prepared " + i, rows(rs, "id", "balance", "opened"));
                    }
                }
            }
        }
    }
}
