//! Amber's SQL layer: parsing, transactions per session, planning and
//! execution.
//!
//! Architecture invariants:
//! - Every statement runs in exactly one storage transaction: the session's
//!   open one (BEGIN ... COMMIT) or a fresh one committed right after the
//!   statement (autocommit). Table scans, Python calls and DML all read and
//!   write through that transaction, so a statement sees its own writes and
//!   everything it read is checked for conflicts at commit.
//! - A failed statement inside BEGIN poisons the transaction (25P02 until
//!   ROLLBACK), exactly as PostgreSQL; nothing of it is ever committed.
//! - Module names resolve through the statement's transaction
//!   (`modules.rs`): a statement uses the module versions of its snapshot,
//!   and module DDL is a statement like any other (inside BEGIN it commits
//!   or rolls back with the block).
//! - General queries go through DataFusion; writes, CALL and module DDL take
//!   a direct path.

pub mod activity;
mod amber_schema;
mod any_arrays;
mod array_functions;
mod array_text_casts;
mod call;
mod canonical;
mod checked_arithmetic;
mod checks;
mod class_objects;
pub mod column_source;
mod columnar;
mod constant;
mod context;
pub mod convert;
mod copy;
mod copy_format;
mod ddl;
mod declared;
mod describe;
mod dml;
pub mod error;
mod exact;
mod expr_rules;
mod float4_promotion;
mod foreign_keys;
mod gucs;
mod index;
mod integer_literals;
mod join_order;
mod json_functions;
mod modules;
mod names;
mod nested;
mod open_scans;
mod parse;
mod pg_catalog;
mod pg_functions;
mod plan;
mod plan_cache;
mod rowexpr;
mod savepoint;
mod scalar_subquery;
mod scan;
mod session;
mod settings;
mod sort_subqueries;
mod subplan;
pub mod table;
mod table_ddl;
mod text_functions;
mod udf;
mod unknown_literals;
mod upgrade;
pub mod value;

pub use copy::CopyOutRows;
pub use datafusion::arrow;
pub use datafusion::common::ScalarValue;
pub use error::SqlError;
pub use plan_cache::PlanCache;
pub use session::{Engine, Output, Prepared, Session};
