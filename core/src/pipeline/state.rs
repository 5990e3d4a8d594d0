//! The state of one run while it streams, and how it handles each binlog
//! event ([`RunState::handle`]): transaction boundaries, table maps, rows
//! (decoded, formatted, routed, handed to the sink), DDL, and the snapshot
//! chunks it emits at transaction boundaries. [`super::steps::drive`] feeds
//! it events; [`super::run`] builds it.

use super::*;

pub(super) struct TableEntry {
    pub(super) table: Table,
    pub(super) topic: Option<Arc<str>>,
    pub(super) format: Box<dyn TableFormat>,
    /// Its changes are remembered for the snapshot merge.
    pub(super) snapshot: bool,
    /// The snapshot watermark signal table: its rows are watermarks, never
    /// messages.
    pub(super) signal: bool,
}

pub(super) struct RunState {
    pub(super) task: String,
    pub(super) flavor: Flavor,
    pub(super) cursor: TxnCursor,
    pub(super) tables: HashMap<u64, TableEntry>,
    pub(super) router: Router,
    pub(super) schema: SchemaCache,
    /// Tracker slot of the open transaction.
    pub(super) slot: Option<u64>,
    pub(super) txn_events: u64,
    /// The open transaction's position as its messages show it.
    pub(super) shown: TxnShown,
    pub(super) out: RowOut,
    pub(super) msg: Vec<u8>,
    /// Key of a format that writes its own.
    pub(super) key: Vec<u8>,
    /// The before image's key of an update (snapshot merge).
    pub(super) before_key: Vec<u8>,
    pub(super) format: TaskFormat,
    /// Server id of the event being handled.
    pub(super) server_id: u32,
    /// `sink.transactions_topic`.
    pub(super) txn_topic: Option<Arc<str>>,
    /// Transaction events of the open transaction (with `txn_topic`).
    pub(super) txn_meta: Option<TxnMeta>,
    pub(super) lease: Lease,
    pub(super) snap: Option<SnapshotRun>,
    /// Maxwell: the newest row message of the open transaction, sent at the
    /// next row or marked `commit: true` at the commit (see [`held`]).
    pub(super) held: Option<held::Held>,
}

/// The open transaction's position as its messages show it, rendered once
/// when it opens: the JSON `position` object up to `"row":`, and the GTID's
/// text (message field and header).
#[derive(Default)]
pub(super) struct TxnShown {
    json_position: Vec<u8>,
    gtid: Option<String>,
}

impl TxnShown {
    fn of(file: &str, t: &OpenTxn) -> TxnShown {
        let gtid = t.gtid.as_ref().map(ToString::to_string);
        TxnShown {
            json_position: message::position_prefix(file, t.start, gtid.as_deref()),
            gtid,
        }
    }

    /// The transaction of a message at `start` of `file`.
    fn txn<'a>(&'a self, file: &'a str, start: u64) -> format::Txn<'a> {
        format::Txn {
            file,
            pos: start,
            gtid: self.gtid.as_deref(),
            json_position: &self.json_position,
        }
    }

    /// The position of message `row` of the transaction at `start`.
    fn pos<'a>(&'a self, file: &'a str, start: u64, row: u64) -> PosRef<'a> {
        PosRef {
            gtid: self.gtid.as_deref(),
            ..message::msg_pos(file, start, row)
        }
    }
}

/// How often an emitted snapshot chunk's acknowledgements are checked.
pub(super) const SNAPSHOT_ACK_POLL: Duration = Duration::from_millis(2);

/// The next chunk of the snapshot, if one runs (else never).
pub(super) async fn next_chunk(
    snap: &mut Option<SnapshotRun>,
) -> Option<Result<snapshot::reader::Chunk, TaskError>> {
    match snap.as_mut() {
        Some(s) => s.next_chunk().await,
        None => std::future::pending().await,
    }
}

impl RunState {
    /// The state of a run that starts at `start`.
    pub(super) fn new(
        spec: &PipelineSpec,
        flavor: Flavor,
        start: &Checkpoint,
        router: Router,
        schema: SchemaCache,
        format: TaskFormat,
        snap: Option<SnapshotRun>,
    ) -> RunState {
        RunState {
            task: spec.task.name().to_string(),
            flavor,
            cursor: TxnCursor::new(start.clone()),
            tables: HashMap::new(),
            router,
            schema,
            slot: None,
            txn_events: 0,
            shown: TxnShown::default(),
            out: RowOut::default(),
            msg: Vec::with_capacity(1024),
            key: Vec::with_capacity(64),
            before_key: Vec::with_capacity(64),
            held: (format.format == replicator_common::config::MessageFormat::Maxwell)
                .then(held::Held::default),
            format,
            server_id: 0,
            txn_topic: spec
                .config
                .sink
                .transactions_topic
                .as_deref()
                .map(Arc::<str>::from),
            txn_meta: None,
            lease: spec.lease.clone(),
            snap,
        }
    }

    /// True when a snapshot chunk can be emitted now.
    pub(super) fn snapshot_ready(&self) -> bool {
        self.snap
            .as_ref()
            .is_some_and(|s| s.ready(&self.cursor).unwrap_or(true))
    }

    /// Emits the pending snapshot chunk if the stream is at a boundary past
    /// its read view.
    pub(super) async fn emit_snapshot(
        &mut self,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        let Some(snap) = self.snap.as_mut() else {
            return Ok(());
        };
        if snap.ready(&self.cursor)? {
            snap.emit(sink, tracker, &mut self.cursor, &self.router, &self.lease)
                .await?;
        }
        Ok(())
    }

    pub(super) fn open_slot(&mut self, tracker: &Tracker) {
        if self.slot.is_none() {
            self.slot = Some(tracker.begin());
            self.txn_events = 0;
            let t = self.cursor.open().expect("a transaction is open");
            self.shown = TxnShown::of(self.cursor.file(), t);
            self.txn_meta = self
                .txn_topic
                .as_ref()
                .map(|_| TxnMeta::new(&self.shown.txn(self.cursor.file(), t.start)));
        }
    }

    pub(super) async fn commit(
        &mut self,
        end_pos: u64,
        ts_ms: i64,
        tracker: &Tracker,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        if let Some(h) = self.held.as_mut() {
            h.send(sink, Some(format::maxwell::mark_commit)).await?;
        }
        if let Some(meta) = self.txn_meta.take().filter(|m| m.begun) {
            self.send_txn_event(&meta, true, ts_ms, sink).await?;
        }
        let cp = self.cursor.commit(end_pos, ts_ms, self.txn_events);
        match self.slot.take() {
            Some(slot) => tracker.end(slot, cp),
            None => tracker.mark(cp),
        }
        Ok(())
    }

    /// Sends the BEGIN or END event of the open transaction to the
    /// transactions topic, at the transaction's next message position.
    pub(super) async fn send_txn_event(
        &mut self,
        meta: &TxnMeta,
        end: bool,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let Some(topic) = self.txn_topic.clone() else {
            return Ok(());
        };
        let slot = self.slot.ok_or_else(|| {
            DefiniteError::Decode(DataError::OutsideTransaction("transaction event"))
        })?;
        let (start, row) = self.cursor.next_row().expect("transaction is open");
        let txn = format::Txn {
            json_position: &[],
            ..self.shown.txn(self.cursor.file(), start)
        };
        meta.write(
            self.format.format,
            &self.task,
            end,
            ts_ms,
            &txn,
            &mut self.msg,
            &mut self.key,
        );
        let pos = message::msg_pos(self.cursor.file(), start, row);
        sink.send(&topic, Some(&self.key), Some(&self.msg), pos, slot)
            .await?;
        self.txn_events += 1;
        Ok(())
    }

    pub(super) async fn handle(
        &mut self,
        ev: &mysql_async::binlog::events::Event,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        let h = ev.header();
        let header = EventHeader {
            timestamp: h.timestamp(),
            type_code: h.event_type_raw(),
            server_id: h.server_id(),
            event_size: h.event_size(),
            log_pos: h.log_pos(),
            flags: h.flags_raw(),
        };
        let offset = (header.log_pos as u64).saturating_sub(header.event_size as u64);
        let at = |e, file: &str| decode_error(e, header.type_code, None, file, offset);
        if header.type_code == decode::codes::event::TRANSACTION_PAYLOAD {
            // MySQL 8 compressed transaction: its events, decompressed, go
            // through the same steps at the payload event's position.
            let events =
                decode::payload::decompress(ev.data()).map_err(|e| at(e, self.cursor.file()))?;
            for (i, inner) in decode::payload::events(&header, &events).enumerate() {
                let (inner, body) = inner.map_err(|e| at(e, self.cursor.file()))?;
                let event = decode::parse_event(&inner, body, self.flavor).map_err(|e| {
                    decode_error(e, inner.type_code, Some(i), self.cursor.file(), offset)
                })?;
                self.apply(event, &inner, offset, sink, tracker).await?;
            }
            return Ok(());
        }
        let inflated;
        let (header, data) = if decode::compressed::is_compressed(header.type_code) {
            inflated = decode::compressed::inflate(&header, ev.data())
                .map_err(|e| at(e, self.cursor.file()))?;
            (inflated.0, inflated.1.as_slice())
        } else {
            (header, ev.data())
        };
        let event = decode::parse_event(&header, data, self.flavor)
            .map_err(|e| at(e, self.cursor.file()))?;
        self.apply(event, &header, offset, sink, tracker).await
    }

    /// Applies one decoded event that starts at `offset` of the binlog file.
    pub(super) async fn apply(
        &mut self,
        event: Event<'_>,
        header: &EventHeader,
        offset: u64,
        sink: &mut KafkaSink,
        tracker: &Tracker,
    ) -> Result<(), TaskError> {
        self.server_id = header.server_id;
        let ts_ms = header.timestamp as i64 * 1000;
        match event {
            Event::Rotate { next_file, .. } => self.cursor.rotate(&next_file),
            Event::MariaGtid { gtid, .. } => {
                self.cursor.maria_gtid(offset, gtid, ts_ms);
                self.open_slot(tracker);
            }
            Event::MySqlGtid { sid, gno } => {
                let gtid = Gtid::Mysql {
                    uuid: uuid_text(&sid),
                    gno,
                };
                self.cursor.mysql_gtid(offset, gtid, ts_ms);
                self.open_slot(tracker);
            }
            Event::Query { database, sql } => {
                let trimmed = sql.trim();
                if trimmed.eq_ignore_ascii_case("BEGIN") {
                    self.cursor.begin(offset, ts_ms);
                    self.open_slot(tracker);
                } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                    self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                        .await?;
                } else if self.cursor.open().is_some_and(|t| t.began) {
                    // a statement inside BEGIN..COMMIT (SAVEPOINT and the like)
                } else {
                    self.cursor.statement(offset, ts_ms);
                    self.open_slot(tracker);
                    if ddl::is_ddl(&sql) {
                        self.schema.invalidate();
                        if let Some((db, table)) = ddl::ddl_target(&sql, &database) {
                            self.emit_ddl(&db, &table, &sql, ts_ms, sink).await?;
                        }
                    }
                    self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                        .await?;
                }
            }
            Event::Xid { .. } => {
                self.commit(header.log_pos as u64, ts_ms, tracker, sink)
                    .await?
            }
            Event::TableMap(mut table) => {
                let topic = self
                    .router
                    .route(&table.database, &table.name)
                    .map(Arc::<str>::from);
                let signal = self.router.is_signal(&table.database, &table.name);
                if let Some(t) = &topic {
                    self.schema.complete(&mut table).await?;
                    sink.prepare_topic(t).await?;
                } else if signal {
                    // its rows are read by column name
                    self.schema.complete(&mut table).await?;
                }
                let format = self.format.table(&table);
                let snapshot = self
                    .snap
                    .as_ref()
                    .is_some_and(|s| s.covers(&table.database, &table.name));
                self.tables.insert(
                    table.table_id,
                    TableEntry {
                        table,
                        topic,
                        format,
                        snapshot,
                        signal,
                    },
                );
            }
            Event::Rows(rows) => self.emit_rows(&rows, ts_ms, sink).await?,
            Event::Heartbeat => {
                if !self.cursor.in_txn() && tracker.open() == 0 {
                    tracker.mark(self.cursor.idle_at(replicator_common::now_ms()));
                }
            }
            Event::FormatDescription { .. } | Event::MariaGtidList(_) | Event::Other { .. } => {}
        }
        Ok(())
    }

    pub(super) async fn emit_rows(
        &mut self,
        rows: &decode::RowsEvent<'_>,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let entry = self
            .tables
            .get(&rows.table_id)
            .ok_or_else(|| DefiniteError::Decode(DataError::UnknownTable(rows.table_id)))?;
        if entry.signal {
            return self.signal_rows(rows);
        }
        let Some(topic) = entry.topic.clone() else {
            return Ok(());
        };
        // the first included rows of a transaction: its BEGIN event first
        if let Some(meta) = self.txn_meta.as_mut().filter(|m| !m.begun) {
            meta.begun = true;
            let meta = meta.clone();
            self.send_txn_event(&meta, false, ts_ms, sink).await?;
        }
        let entry = &self.tables[&rows.table_id];
        let kind = match rows.kind {
            RowKind::Insert => ChangeType::Insert,
            RowKind::Update => ChangeType::Update,
            RowKind::Delete => ChangeType::Delete,
        };
        let slot = self
            .slot
            .ok_or(DefiniteError::Decode(DataError::OutsideTransaction(
                "row event",
            )))?;
        let mut iter = rows.rows(&entry.table);
        while iter.next_row(&mut self.out).map_err(|e| {
            DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
        })? {
            if !self.lease.is_valid() {
                return Err(TaskError::LeaseLost);
            }
            if entry.snapshot {
                if let (Some(s), Some(t)) = (self.snap.as_mut(), self.cursor.open()) {
                    // an update may change the key: both keys are merged
                    let (before, after) = match kind {
                        ChangeType::Update => {
                            self.out.before_key(&entry.table, &mut self.before_key);
                            (
                                Some(self.before_key.as_slice()),
                                Some(self.out.key.as_slice()),
                            )
                        }
                        ChangeType::Delete => (Some(self.out.key.as_slice()), None),
                        _ => (None, Some(self.out.key.as_slice())),
                    };
                    s.record(
                        &entry.table.database,
                        &entry.table.name,
                        before,
                        after,
                        self.cursor.file(),
                        t.start,
                    );
                }
            }
            let before = self.out.has_before.then_some(self.out.before.as_slice());
            let after = self.out.has_after.then_some(self.out.after.as_slice());
            let bad = |e: format::FormatError| {
                DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
            };
            // A format may write an update that changes the key as a delete
            // then an insert (Debezium does).
            let split = kind == ChangeType::Update
                && entry.format.splits_key_change(before, after).map_err(bad)?;
            let parts = if split {
                [
                    (ChangeType::Delete, before, None),
                    (ChangeType::Insert, None, after),
                ]
            } else {
                [(kind, before, after), (kind, None, None)]
            };
            for &(kind, before, after) in &parts[..if split { 2 } else { 1 }] {
                let order = self
                    .txn_meta
                    .as_mut()
                    .map(|m| m.on_row(&entry.table.database, &entry.table.name));
                let (start, row) = self.cursor.next_row().expect("transaction is open");
                let change = format::RowChange {
                    kind,
                    ts_ms,
                    server_id: self.server_id,
                    txn: self.shown.txn(self.cursor.file(), start),
                    row,
                    key: &self.out.key,
                    before,
                    after,
                    order: order.map(|(total_order, data_collection_order)| TxnOrder {
                        id: self.txn_meta.as_ref().map_or("", |m| m.id.as_str()),
                        total_order,
                        data_collection_order,
                    }),
                    snapshot: format::SnapshotMark::Stream,
                };
                let key_out = entry
                    .format
                    .row(&mut self.msg, &mut self.key, &change)
                    .map_err(bad)?;
                let key = match key_out {
                    KeyOut::Row => Some(self.out.key.as_slice()),
                    KeyOut::Written => Some(self.key.as_slice()),
                    KeyOut::Null => None,
                };
                let pos = self.shown.pos(self.cursor.file(), start, row);
                match self.held.as_mut() {
                    Some(h) => {
                        h.send(sink, None).await?;
                        h.push(&topic, key, Some(&self.msg), pos, slot);
                    }
                    None => sink.send(&topic, key, Some(&self.msg), pos, slot).await?,
                }
                self.txn_events += 1;
                if kind == ChangeType::Delete && self.format.tombstones {
                    // A tombstone has a position of its own (the next row
                    // number), so duplicate removal tells it from its delete.
                    let (start, row) = self.cursor.next_row().expect("transaction is open");
                    let pos = self.shown.pos(self.cursor.file(), start, row);
                    match self.held.as_mut() {
                        Some(h) => h.push(&topic, key, None, pos, slot),
                        None => sink.send(&topic, key, None, pos, slot).await?,
                    }
                    self.txn_events += 1;
                }
            }
        }
        Ok(())
    }

    /// Rows of the watermark signal table go to the snapshot (if one runs),
    /// never to Kafka.
    pub(super) fn signal_rows(&mut self, rows: &decode::RowsEvent<'_>) -> Result<(), TaskError> {
        let (Some(snap), Some(t)) = (self.snap.as_mut(), self.cursor.open()) else {
            return Ok(());
        };
        let entry = &self.tables[&rows.table_id];
        let mut iter = rows.rows(&entry.table);
        while iter.next_row(&mut self.out).map_err(|e| {
            DefiniteError::Decode(DataError::row(&entry.table.database, &entry.table.name, e))
        })? {
            if self.out.has_after {
                if let Some((task, mark)) = snapshot::watermark::parse_row(&self.out.after) {
                    snap.signal(&task, &mark, self.cursor.file(), t.start);
                }
            }
        }
        Ok(())
    }

    pub(super) async fn emit_ddl(
        &mut self,
        db: &str,
        table: &str,
        sql: &str,
        ts_ms: i64,
        sink: &mut KafkaSink,
    ) -> Result<(), TaskError> {
        let Some(routed) = self.router.route(db, table) else {
            return Ok(());
        };
        // Debezium writes schema changes to a topic of their own
        let topic: Arc<str> = match self.format.ddl_topic() {
            Some(t) => Arc::from(t),
            None => Arc::from(routed),
        };
        sink.prepare_topic(&topic).await?;
        let def = if self.format.wants_definition() && ddl::ddl_kind(sql) != ddl::DdlKind::DropTable
        {
            self.schema.definition(db, table).await?
        } else {
            None
        };
        if !self.lease.is_valid() {
            return Err(TaskError::LeaseLost);
        }
        let (start, row) = self.cursor.next_row().expect("transaction is open");
        self.format.ddl(
            &mut self.msg,
            &mut self.key,
            &format::DdlChange {
                database: db,
                table,
                sql,
                ts_ms,
                server_id: self.server_id,
                txn: self.shown.txn(self.cursor.file(), start),
                row,
                def: def.as_ref(),
            },
        );
        let pos = self.shown.pos(self.cursor.file(), start, row);
        let slot = self.slot.expect("statement opened a slot");
        sink.send(&topic, Some(&self.key), Some(&self.msg), pos, slot)
            .await?;
        self.txn_events += 1;
        Ok(())
    }
}

/// A decode error as the task reports it: the event type and where the
/// event starts, and for an event inside a MySQL transaction payload which
/// one it is.
pub(super) fn decode_error(
    e: decode::DecodeError,
    type_code: u8,
    inner: Option<usize>,
    file: &str,
    offset: u64,
) -> TaskError {
    let place = match inner {
        None => format!("event type {type_code} at {file}:{offset}"),
        Some(i) => format!(
            "event type {type_code}, event {i} inside the transaction payload \
             event at {file}:{offset}"
        ),
    };
    DefiniteError::Decode(DataError::Event { place, source: e }).into()
}

pub(super) fn uuid_text(sid: &[u8; 16]) -> String {
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
