//! Messages between the server and a Python worker process, over a Unix
//! socketpair: each message is a 4-byte little-endian length and a postcard
//! body. The server is the only side that touches storage; the worker asks.
//!
//! A typical call is one round trip: the `Call` carries the objects its
//! arguments name and the module's variables, and the worker's writes travel
//! with its next request or with `Done`.

use crate::RuntimeError;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// Largest message either side accepts (a call's result included): a
/// larger one fails the call (54000), it is never allocated.
pub const MESSAGE_BYTES_MAX: usize = 1 << 30;

/// A key and its stored value (`None`: absent) as the transaction read it.
pub type KeyValue = (Vec<u8>, Option<String>);

#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Execute a module's source in a scratch namespace and describe it.
    Analyze {
        name: String,
        source: String,
    },
    Call(Box<CallMsg>),
    /// The answer to the worker's last [`Op`].
    Reply(Reply),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CallMsg {
    /// Unique per server: an interrupt names the call it is meant for.
    pub call_id: u64,
    pub module: String,
    pub generation: u64,
    /// Source and shape, when this worker has not loaded `generation` yet.
    pub load: Option<ModuleLoad>,
    pub desc_json: String,
    pub args_json: String,
    /// Keys the call is about to read, read already in its transaction.
    pub prefetched: Vec<KeyValue>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ModuleLoad {
    pub source: String,
    pub shape_json: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Value(Option<String>),
    Rows(Vec<(Vec<u8>, String)>),
    Oids(Vec<u64>),
    Sql(String),
    /// The request (or a write sent with it) was refused; the call fails.
    Error {
        sqlstate: String,
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Write {
    Put(Vec<u8>, String),
    Delete(Vec<u8>),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Op {
    Get(Vec<u8>),
    Scan(Vec<u8>),
    /// The objects of class `class_id` whose key in its index `index_id`
    /// starts with `values_json` (a JSON array of values in Python's
    /// encoding, one per leading key column), in key order.
    IndexScan {
        class_id: u64,
        index_id: u64,
        values_json: String,
    },
    /// Fresh object ids, at most [`OIDS_PER_REQUEST_MAX`].
    NewOids(u32),
    /// Only the writes (the buffer is full); the reply is `Value(None)`.
    Flush,
    Sql {
        query: String,
        params_json: String,
    },
}

pub const OIDS_PER_REQUEST_MAX: u32 = 256;

#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// Sent once, when the interpreter is ready for work.
    Ready,
    /// Buffered writes (applied first, in order), then one operation.
    Request {
        writes: Vec<Write>,
        op: Op,
    },
    /// The call ended: its remaining writes and its JSON result or error.
    Done {
        writes: Vec<Write>,
        outcome: Result<String, RuntimeError>,
    },
    Analyzed(Result<String, RuntimeError>),
    /// The process running the call ended without answering.
    Died(ChildEnd),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signaled(i32),
    /// waitpid failed.
    Lost,
}

pub fn send<T: Serialize>(w: &mut impl io::Write, msg: &T) -> io::Result<()> {
    let body = postcard::to_stdvec(msg).map_err(io::Error::other)?;
    if body.len() > MESSAGE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {} bytes exceeds the limit", body.len()),
        ));
    }
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    // One buffer, one write: the reader never waits on half a header.
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

pub fn recv<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header) as usize;
    if len > MESSAGE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the limit"),
        ));
    }
    // Grown as bytes arrive, never sized up front by the peer's header.
    let mut body = Vec::new();
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    postcard::from_bytes(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
