//! pgwire handlers: one set per connection, owning that connection's session.

use crate::cancel::CancelRegistry;
use crate::encode;
use crate::unflushed::Unflushed;
use amber_query::value::Settings;
use amber_query::{Engine, Output, Prepared, Session, SqlError};
use async_trait::async_trait;
use futures::{stream, Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::PidSecretKeyGenerator;
use pgwire::api::DEFAULT_NAME;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Bind, BindComplete, Describe, Execute, Sync as PgSync};
use pgwire::messages::response::CommandComplete;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct Connection {
    session: Arc<Mutex<Session>>,
    parser: Arc<Parser>,
    cancels: Arc<CancelRegistry>,
    cancel_flag: Arc<std::sync::atomic::AtomicBool>,
    pid: std::sync::atomic::AtomicI32,
}

impl Connection {
    pub fn new(engine: Arc<Engine>, cancels: Arc<CancelRegistry>) -> Connection {
        let session = Session::new(engine);
        let cancel_flag = session.cancel_flag();
        let session = Arc::new(Mutex::new(session));
        Connection {
            parser: Arc::new(Parser {
                session: session.clone(),
            }),
            session,
            cancels,
            cancel_flag,
            pid: std::sync::atomic::AtomicI32::new(0),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
        if pid != 0 {
            self.cancels.unregister(pid);
        }
    }
}

pub struct Handlers(pub Arc<Connection>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.0.cancels.clone()
    }
    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.0.clone()
    }
}

/// COPY FROM STDIN's data messages, to the session's running COPY.
#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        session.copy_data(&data.data).map_err(|e| user_error(&e))
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let tag = self
            .session
            .lock()
            .await
            .copy_done()
            .await
            .map_err(|e| user_error(&e))?;
        let complete: CommandComplete = tag_of(&tag).into();
        client
            .feed(PgWireBackendMessage::CommandComplete(complete))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let e = self.session.lock().await.copy_fail(&fail.message);
        user_error(&e)
    }
}

fn error_info(e: &SqlError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_string(), e.code.clone(), e.message.clone());
    info.detail = e.detail.clone();
    info.where_context = e.context.clone();
    if let Some(o) = &e.object {
        info.schema = o.schema.clone();
        info.table = o.table.clone();
        info.column = o.column.clone();
        info.constraint = o.constraint.clone();
        info.hint = o.hint.clone();
    }
    info
}

fn user_error(e: &SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// The ParameterStatus messages of the startup: the session's values
/// (after the startup packet's settings).
fn server_parameters(session: &Session) -> DefaultServerParameterProvider {
    let setting = |name: &str| session.setting(name).unwrap_or_default();
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = "15.0 (Amber)".to_string();
    p.search_path = setting("search_path");
    p.time_zone = setting("timezone");
    p.date_style = setting("datestyle");
    p.interval_style = setting("intervalstyle");
    p.application_name = Some(setting("application_name"));
    p.is_superuser = true;
    p
}

/// The settings a client's startup packet carries: its parameters other
/// than the connection's identity, and `options`' `-c name=value` (or
/// `--name=value`) pairs, as PostgreSQL reads them.
fn startup_settings(params: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "user" | "database" | "replication" | "client_encoding" => {}
            "options" => {
                let mut words = value.split_whitespace();
                while let Some(w) = words.next() {
                    let pair = if w == "-c" {
                        words.next()
                    } else {
                        w.strip_prefix("-c").or_else(|| w.strip_prefix("--"))
                    };
                    if let Some((n, v)) = pair.and_then(|p| p.split_once('=')) {
                        out.push((n.replace('-', "_"), v.to_string()));
                    }
                }
            }
            _ => out.push((name.clone(), value.clone())),
        }
    }
    out
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let user = client.metadata().get("user").cloned().unwrap_or_default();
            if user != "amber" {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    format!("role \"{user}\" does not exist"),
                ))));
            }
            let database = client
                .metadata()
                .get("database")
                .cloned()
                .unwrap_or_else(|| user.clone());
            if database != "amber" {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "3D000".into(),
                    format!("database \"{database}\" does not exist"),
                ))));
            }
            // pg_dump reads the catalog through dozens of queries Amber
            // does not all answer yet: a clear refusal up front beats the
            // first of them failing halfway through a dump.
            if startup
                .parameters
                .get("application_name")
                .map(String::as_str)
                == Some("pg_dump")
            {
                let mut info = ErrorInfo::new(
                    "FATAL".into(),
                    "0A000".into(),
                    "pg_dump cannot dump an Amber database yet".into(),
                );
                info.hint = Some(
                    "Dump each table's rows with COPY ... TO STDOUT (psql's \\copy), and each module's source with SELECT name, source FROM amber.modules."
                        .into(),
                );
                return Err(PgWireError::UserError(Box::new(info)));
            }
            // Settings from the startup packet, as SET would make them; a
            // bad one refuses the connection (FATAL), as in PostgreSQL.
            let parameters = {
                let mut session = self.session.lock().await;
                for (name, value) in startup_settings(&startup.parameters) {
                    if let Err(e) = session.apply_startup_setting(&name, &value) {
                        let mut info = error_info(&e);
                        info.severity = "FATAL".into();
                        return Err(PgWireError::UserError(Box::new(info)));
                    }
                }
                server_parameters(&session)
            };
            let (pid, secret) = self.cancels.keys.generate(client);
            client.set_pid_and_secret_key(pid, secret.clone());
            self.session
                .lock()
                .await
                .connected(pid, Some(client.socket_addr()));
            self.pid.store(pid, std::sync::atomic::Ordering::SeqCst);
            self.cancels.register(pid, secret, self.cancel_flag.clone());
            tracing::info!(peer = %client.socket_addr(), user, "connection authenticated");
            finish_authentication(client, &parameters).await?;
            client.set_state(PgWireConnectionState::ReadyForQuery);
        }
        Ok(())
    }
}

/// The command tag without its row count (pgwire appends the count).
fn tag_prefix(tag: &str) -> String {
    match tag.rsplit_once(' ') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) => head.to_string(),
        _ => tag.to_string(),
    }
}

fn tag_of(tag: &str) -> Tag {
    match tag.rsplit_once(' ') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit()) && !tail.is_empty() => {
            Tag::new(head).with_rows(tail.parse().unwrap_or(0))
        }
        _ => Tag::new(tag),
    }
}

fn to_response(out: Output, format: &Format, settings: &Settings) -> PgWireResult<Response> {
    Ok(match out {
        Output::Rows {
            schema,
            batches,
            tag,
        } => {
            let fields = Arc::new(encode::field_infos(&schema, format));
            let rows = match encode::encode_batches(&batches, &fields, settings) {
                Ok(rows) => rows,
                Err(e) => return Ok(Response::Error(Box::new(error_info(&e)))),
            };
            let mut resp = QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
            resp.set_command_tag(&tag_prefix(&tag));
            Response::Query(resp)
        }
        Output::Command(tag) if tag.is_empty() => Response::EmptyQuery,
        Output::Command(tag) => Response::Execution(tag_of(&tag)),
        Output::TxnStart(tag) => Response::TransactionStart(Tag::new(&tag)),
        Output::TxnEnd(tag) => Response::TransactionEnd(Tag::new(&tag)),
        Output::CopyIn { columns, binary } => {
            Response::CopyIn(CopyResponse::new(binary as i8, columns, stream::empty()))
        }
        Output::CopyOut(rows) => {
            let (columns, binary) = (rows.columns(), rows.binary());
            let data = rows.map(|r| {
                r.map(|bytes| CopyData::new(bytes.into()))
                    .map_err(|e| user_error(&e))
            });
            Response::CopyOut(CopyResponse::new(binary as i8, columns, stream::iter(data)))
        }
    })
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let span = tracing::debug_span!("statement", sql = %truncate(query));
        let (results, settings, reported) = tracing::Instrument::instrument(
            async {
                let mut session = self.session.lock().await;
                let results = session.execute_simple(query).await;
                (results, session.value_settings(), session.take_reported())
            },
            span,
        )
        .await;
        report_settings(client, reported).await?;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(o) => out.push(to_response(o, &Format::UnifiedText, &settings)?),
                Err(e) => {
                    tracing::debug!(code = %e.code, error = %e.message, "statement failed");
                    out.push(Response::Error(Box::new(error_info(&e))));
                }
            }
        }
        Ok(out)
    }
}

/// ParameterStatus for each reported setting a statement changed (as
/// PostgreSQL sends for TimeZone, DateStyle, ...).
async fn report_settings<C>(client: &mut C, reported: Vec<(String, String)>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in reported {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub struct Parser {
    session: Arc<Mutex<Session>>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let client_types: Vec<_> = types
            .iter()
            .map(|t| t.as_ref().and_then(encode::pg_to_data_type))
            .collect();
        let mut session = self.session.lock().await;
        let mut prepared = session
            .prepare(sql, &client_types)
            .await
            .map_err(|e| user_error(&e))?;
        // Keep the client's own types (e.g. int4) where it named them: its
        // parameters arrive in that type's format.
        for (i, t) in types.iter().enumerate() {
            let Some(t) = t.as_ref().filter(|t| **t != Type::UNKNOWN) else {
                continue;
            };
            if let Some(oid) = prepared.param_oids.get_mut(i) {
                *oid = t.oid();
            }
            if let (Some(dt), Some(d)) =
                (prepared.param_types.get_mut(i), encode::pg_to_data_type(t))
            {
                *dt = d;
            }
        }
        Ok(Some(prepared))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_oids
            .iter()
            .map(|o| encode::pg_type(*o))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.columns {
            Some(schema) => encode::field_infos(schema, format.unwrap_or(&Format::UnifiedText)),
            None => vec![],
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let span = tracing::debug_span!("statement", sql = %truncate(&prepared.sql));
        let mut session = self.session.lock().await;
        let settings = session.value_settings();
        if portal.parameters.len() != prepared.param_types.len() {
            return Err(user_error(&SqlError::new(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    portal.parameters.len(),
                    prepared.param_types.len()
                ),
            )));
        }
        let mut params = Vec::with_capacity(prepared.param_types.len());
        for (i, (dt, oid)) in prepared
            .param_types
            .iter()
            .zip(&prepared.param_oids)
            .enumerate()
        {
            // `oid` is the client's declared type where it gave one (set
            // in `parse_sql`), else ours.
            let v = encode::decode_param(
                portal.parameters[i].as_deref(),
                *oid,
                &portal.parameter_format,
                i,
                dt,
                &settings,
            )
            .map_err(|e| user_error(&e))?;
            params.push(v);
        }
        session
            .begin_implicit(&prepared.kind)
            .map_err(|e| user_error(&e))?;
        let result =
            tracing::Instrument::instrument(session.execute_prepared(prepared, &params), span)
                .await;
        let settings = session.value_settings();
        let reported = session.take_reported();
        drop(session);
        report_settings(client, reported).await?;
        match result {
            Ok(out) => to_response(out, &portal.result_column_format, &settings),
            Err(e) => Err(user_error(&e)),
        }
    }

    /// As pgwire's, through [`Unflushed`]: the Execute's answer
    /// (CommandComplete included) is queued and leaves with ReadyForQuery
    /// at Sync, one write per Sync as PostgreSQL's.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self._on_execute(&mut Unflushed(client), message).await?;
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            // The client sends its data only once it has CopyInResponse
            // (its Sync, if it sent one, is ignored during the copy).
            client.flush().await?;
        }
        Ok(())
    }

    /// As pgwire's, but BindComplete is queued, not flushed: the answer to
    /// Bind/Execute/Sync leaves in one write at Sync (as PostgreSQL's),
    /// where pgwire's default sends a segment per message.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // pgwire keeps the unnamed statement and portal under its
        // DEFAULT_NAME (an empty name arrives as None).
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(user_error(&SqlError::new(
                        "08P01",
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                            message.parameters.len()
                        ),
                    )));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    /// As pgwire's, but a statement without result columns is described
    /// with NoData even when it has parameters (as PostgreSQL does), and
    /// the answer is queued until Sync or Flush (as Execute's).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == b'S' {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                if stmt.statement.columns.is_none() {
                    let types: Vec<u32> = (0..stmt
                        .statement
                        .param_types
                        .len()
                        .max(stmt.parameter_types.len()))
                        .map(|i| {
                            stmt.parameter_types
                                .get(i)
                                .cloned()
                                .flatten()
                                .or_else(|| {
                                    stmt.statement
                                        .param_oids
                                        .get(i)
                                        .map(|o| encode::pg_type(*o))
                                })
                                .unwrap_or(Type::UNKNOWN)
                                .oid()
                        })
                        .collect();
                    client
                        .feed(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(types),
                        ))
                        .await?;
                    client
                        .feed(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(&mut Unflushed(client), message).await
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = {
            let mut s = self.session.lock().await;
            // The implicit transaction of the Executes since the last
            // Sync ends here; a failed commit is reported before
            // ReadyForQuery.
            if let Err(e) = s.sync().await {
                client
                    .send(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                    .await?;
            }
            if s.is_failed() {
                TransactionStatus::Error
            } else if s.in_transaction() {
                TransactionStatus::Transaction
            } else {
                TransactionStatus::Idle
            }
        };
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}
