//! SAVEPOINT, RELEASE [SAVEPOINT] and ROLLBACK TO [SAVEPOINT] (what
//! SQLAlchemy, Django and psql's ON_ERROR_ROLLBACK send), over the storage
//! transaction's savepoints: ROLLBACK TO undoes every write since the
//! savepoint (SQL, COPY and Python alike, since all go through the one
//! transaction) and forgets the module versions deployed since; it also
//! ends a failed block's failure, as in PostgreSQL.

use crate::error::SqlError;
use crate::session::{aborted, Output, Session, TxnState};
use amber_storage::Savepoint;
use datafusion::sql::sqlparser::ast::Ident;

/// One savepoint of the open block.
pub(crate) struct Named {
    name: String,
    savepoint: Savepoint,
    /// How many deploys the block had made when it was set.
    deployed: usize,
}

fn outside_block(command: &str) -> SqlError {
    SqlError::new(
        "25P01",
        format!("{command} can only be used in transaction blocks"),
    )
}

fn no_such(name: &str) -> SqlError {
    SqlError::new("3B001", format!("savepoint \"{name}\" does not exist"))
}

impl Session {
    /// The innermost savepoint named `name` (3B001 if none): its name as
    /// PostgreSQL reads it and its place in the stack.
    fn find_savepoint(&self, name: &Ident) -> Result<(String, usize), SqlError> {
        let name = crate::session::ident_value(name);
        let at = self
            .savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| no_such(&name))?;
        Ok((name, at))
    }

    /// `SAVEPOINT name`.
    pub(crate) fn savepoint(&mut self, name: &Ident) -> Result<Output, SqlError> {
        let handle = match &self.state {
            TxnState::Open(h) if !self.implicit => h.clone(),
            TxnState::Failed(_) => return Err(aborted()),
            _ => return Err(outside_block("SAVEPOINT")),
        };
        let savepoint = crate::dml::lock(&handle)?.savepoint()?;
        self.savepoints.push(Named {
            name: crate::session::ident_value(name),
            savepoint,
            deployed: self.deployed.len(),
        });
        Ok(Output::Command("SAVEPOINT".into()))
    }

    /// `RELEASE [SAVEPOINT] name`: closes it and every savepoint set after
    /// it, keeping their writes.
    pub(crate) fn release_savepoint(&mut self, name: &Ident) -> Result<Output, SqlError> {
        let handle = match &self.state {
            TxnState::Open(h) if !self.implicit => h.clone(),
            TxnState::Failed(_) => return Err(aborted()),
            _ => return Err(outside_block("RELEASE SAVEPOINT")),
        };
        let (_, at) = self.find_savepoint(name)?;
        let mut txn = crate::dml::lock(&handle)?;
        for s in self.savepoints.drain(at..).rev() {
            txn.release(s.savepoint);
        }
        Ok(Output::Command("RELEASE".into()))
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes everything since it (the
    /// savepoint stays, as in PostgreSQL), and a failed block goes on.
    pub(crate) fn rollback_to_savepoint(&mut self, name: &Ident) -> Result<Output, SqlError> {
        let handle = match &self.state {
            TxnState::Open(h) | TxnState::Failed(h) if !self.implicit => h.clone(),
            _ => return Err(outside_block("ROLLBACK TO SAVEPOINT")),
        };
        let (name, at) = self.find_savepoint(name)?;
        let mut txn = crate::dml::lock(&handle)?;
        // Those set after it close first (their undo entries are within
        // its own), then it rolls back and is set again at once.
        let mut later = self.savepoints.split_off(at);
        let target = later.remove(0);
        for s in later.into_iter().rev() {
            txn.release(s.savepoint);
        }
        txn.rollback_to(target.savepoint)?;
        let savepoint = txn.savepoint()?;
        drop(txn);
        self.deployed.truncate(target.deployed);
        self.savepoints.push(Named {
            name,
            savepoint,
            deployed: target.deployed,
        });
        self.state = TxnState::Open(handle);
        Ok(Output::Command("ROLLBACK".into()))
    }
}
