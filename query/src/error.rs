//! SQL errors with PostgreSQL SQLSTATE codes.

use amber_runtime::RuntimeError;
use amber_storage::StorageError;
use datafusion::error::DataFusionError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    /// Where it happened (PostgreSQL's CONTEXT field), e.g. `COPY account,
    /// line 3, column balance: "x"`.
    pub context: Option<String>,
    /// The object an integrity error concerns (boxed: errors stay small
    /// on every `Result` path).
    pub object: Option<Box<ErrorObject>>,
}

/// PostgreSQL's SCHEMA, TABLE, COLUMN and CONSTRAINT error fields, which
/// drivers report (node-postgres's `error.constraint`), and its HINT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorObject {
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
    pub hint: Option<String>,
}

impl SqlError {
    pub fn new(code: &str, message: impl Into<String>) -> SqlError {
        SqlError {
            code: code.to_string(),
            message: message.into(),
            detail: None,
            context: None,
            object: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> SqlError {
        SqlError::new("XX000", message)
    }

    pub fn syntax(message: impl Into<String>) -> SqlError {
        SqlError::new("42601", message)
    }

    pub fn unsupported(message: impl Into<String>) -> SqlError {
        SqlError::new("0A000", message)
    }

    pub fn with_detail(mut self, detail: Option<String>) -> SqlError {
        self.detail = detail;
        self
    }

    /// The table (and its schema) the error concerns.
    pub fn with_table(mut self, schema: &str, table: &str) -> SqlError {
        let o = self.object.get_or_insert_with(Box::default);
        o.schema = Some(schema.to_string());
        o.table = Some(table.to_string());
        self
    }

    pub fn with_column(mut self, column: &str) -> SqlError {
        self.object.get_or_insert_with(Box::default).column = Some(column.to_string());
        self
    }

    pub fn with_hint(mut self, hint: &str) -> SqlError {
        self.object.get_or_insert_with(Box::default).hint = Some(hint.to_string());
        self
    }

    pub fn with_constraint(mut self, constraint: &str) -> SqlError {
        self.object.get_or_insert_with(Box::default).constraint = Some(constraint.to_string());
        self
    }

    pub fn with_context(mut self, context: String) -> SqlError {
        self.context = Some(context);
        self
    }
}

impl From<StorageError> for SqlError {
    fn from(e: StorageError) -> SqlError {
        let sqlstate = e.sqlstate();
        match e {
            StorageError::Engine(m) => SqlError::new(sqlstate, m),
            other => SqlError::new(sqlstate, other.to_string()),
        }
    }
}

impl From<amber_catalog::CatalogError> for SqlError {
    fn from(e: amber_catalog::CatalogError) -> SqlError {
        match e {
            amber_catalog::CatalogError::Storage(s) => s.into(),
            stale @ amber_catalog::CatalogError::Redeployed(_) => {
                SqlError::new(stale.sqlstate(), stale.to_string())
            }
            other => SqlError::internal(other.to_string()),
        }
    }
}

impl From<amber_catalog::row::RowError> for SqlError {
    fn from(e: amber_catalog::row::RowError) -> SqlError {
        // XX001 data_corrupted: a stored object that cannot be read; a
        // value that cannot be encoded is Amber's own bug (XX000).
        match e {
            amber_catalog::row::RowError::Corrupt(_) => SqlError::new("XX001", e.to_string()),
            other => SqlError::internal(other.to_string()),
        }
    }
}

impl From<RuntimeError> for SqlError {
    fn from(e: RuntimeError) -> SqlError {
        match e {
            RuntimeError::Python {
                sqlstate,
                message,
                detail,
            } => SqlError::new(&sqlstate, message).with_detail(detail),
            RuntimeError::Syntax { message, .. } => SqlError::new("42601", message),
            RuntimeError::Internal(m) => SqlError::internal(m),
        }
    }
}

/// Marker carried through DataFusion for errors that already have a SQLSTATE
/// (a Python exception inside a UDF, a storage conflict inside a scan).
impl From<SqlError> for DataFusionError {
    fn from(e: SqlError) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> SqlError {
        // Find an SqlError wrapped anywhere in the chain.
        if let Some(inner) = find_sql_error(&e) {
            return inner;
        }
        let msg = e.strip_backtrace();
        let lower = msg.to_lowercase();
        if lower.contains("table") && lower.contains("not found") {
            return SqlError::new("42P01", clean_message(&msg));
        }
        if lower.contains("no field named")
            || lower.contains("column") && lower.contains("not found")
        {
            return SqlError::new("42703", clean_message(&msg));
        }
        if lower.contains("invalid function") {
            return SqlError::new("42883", clean_message(&msg));
        }
        // The error itself, not DataFusion's wrappers (context, diagnostics).
        let code = match e.find_root() {
            DataFusionError::SQL(..) => "42601",
            DataFusionError::Plan(m) => classify_plan_error(m),
            DataFusionError::SchemaError(s, _) => match **s {
                datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
                datafusion::common::SchemaError::AmbiguousReference { .. } => "42702",
                _ => "42P10",
            },
            DataFusionError::NotImplemented(_) => "0A000",
            DataFusionError::ArrowError(ae, _) => match ae.as_ref() {
                datafusion::arrow::error::ArrowError::DivideByZero => "22012",
                datafusion::arrow::error::ArrowError::CastError(_)
                | datafusion::arrow::error::ArrowError::ParseError(_) => "22P02",
                datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) => "22003",
                _ => "XX000",
            },
            DataFusionError::Execution(m) if m.contains("Divide by zero") => "22012",
            DataFusionError::Execution(_) => "22000",
            _ => "XX000",
        };
        SqlError::new(code, clean_message(&msg))
    }
}

fn classify_plan_error(m: &str) -> &'static str {
    if m.contains("table") && m.contains("not found")
        || m.starts_with("relation \"") && m.ends_with("\" does not exist")
    {
        "42P01"
    } else if m.contains("Invalid function") || m.contains("function") && m.contains("not found") {
        "42883"
    } else if m.contains("No field named") || m.contains("column") {
        "42703"
    } else if m.contains("must appear in the GROUP BY") || m.contains("GROUP BY") {
        "42803"
    } else if m.contains("No function matches") || m.contains("coerc") {
        "42883"
    } else {
        "42601"
    }
}

fn clean_message(m: &str) -> String {
    let m = m
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("SQL error: ")
        .trim_start_matches("Schema error: ")
        .trim_start_matches("Execution error: ")
        .trim_start_matches("This feature is not implemented: ");
    m.lines().next().unwrap_or(m).to_string()
}

fn find_sql_error(e: &DataFusionError) -> Option<SqlError> {
    match e {
        DataFusionError::External(b) => b.downcast_ref::<SqlError>().cloned(),
        DataFusionError::Context(_, inner) => find_sql_error(inner),
        DataFusionError::Shared(inner) => find_sql_error(inner),
        DataFusionError::Collection(v) => v.iter().find_map(find_sql_error),
        DataFusionError::ArrowError(ae, _) => match ae.as_ref() {
            datafusion::arrow::error::ArrowError::ExternalError(b) => b
                .downcast_ref::<DataFusionError>()
                .and_then(find_sql_error)
                .or_else(|| b.downcast_ref::<SqlError>().cloned()),
            _ => None,
        },
        _ => None,
    }
}
