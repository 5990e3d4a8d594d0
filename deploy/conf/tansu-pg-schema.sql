-- The PostgreSQL schema that Tansu 0.6.0's `postgres://` storage engine
-- expects. Tansu 0.6.0 creates its schema itself only on its SQLite
-- storages (`tansu-storage` applies its `src/ddl/*.sql` there); on
-- PostgreSQL it expects the tables to exist, and no published crate
-- carries them. This file is ours: the tables and columns of the crate's
-- SQLite DDL, with the PostgreSQL types that Tansu's `pg.rs` binds and
-- reads (i16 -> smallint, i32 -> int, i64 -> bigint, SystemTime ->
-- timestamp, Uuid -> uuid, serde_json::Value -> jsonb, &[u8] -> bytea),
-- the unique constraints its `on conflict` clauses name, and the
-- `record.transaction_id` its fetch compares with the current snapshot.
--
-- Applied by the test harness (`tests/src/pg_kafka.rs`) to a fresh
-- database before the broker starts; idempotent.

create table if not exists cluster (
    id int generated always as identity primary key,
    name text not null unique,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null
);

create table if not exists topic (
    id int generated always as identity primary key,
    cluster int references cluster (id) on delete cascade not null,
    name text not null,
    uuid uuid not null,
    partitions int not null,
    replication_factor int not null,
    is_internal bool default false not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (cluster, name)
);

create table if not exists topition (
    id int generated always as identity primary key,
    topic int references topic (id) on delete cascade,
    partition int,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (topic, partition)
);

create table if not exists watermark (
    id int generated always as identity primary key,
    topition int references topition (id) on delete cascade unique,
    low bigint,
    high bigint,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null
);

create table if not exists topic_configuration (
    id int generated always as identity primary key,
    topic int references topic (id) on delete cascade,
    name text not null,
    value text,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (topic, name)
);

create table if not exists record (
    topition int references topition (id) on delete cascade,
    offset_id bigint not null,
    transaction_id xid8 default pg_current_xact_id() not null,
    attributes smallint,
    producer_id bigint,
    producer_epoch smallint,
    timestamp timestamp,
    k bytea,
    v bytea,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    primary key (topition, offset_id)
);

create table if not exists header (
    topition int,
    offset_id bigint,
    k bytea,
    v bytea,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    foreign key (topition, offset_id) references record (topition, offset_id) on delete cascade
);

create table if not exists consumer_group (
    id int generated always as identity primary key,
    cluster int references cluster (id) on delete cascade not null,
    name text not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (cluster, name)
);

create table if not exists consumer_group_detail (
    id int generated always as identity primary key,
    consumer_group int references consumer_group (id) on delete cascade unique,
    e_tag uuid not null,
    detail jsonb not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null
);

create table if not exists consumer_offset (
    id int generated always as identity primary key,
    consumer_group int references consumer_group (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    committed_offset bigint,
    leader_epoch int,
    timestamp timestamp,
    metadata text,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (consumer_group, topition)
);

create table if not exists producer (
    id bigint generated always as identity primary key,
    cluster int references cluster (id) on delete cascade not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null
);

create table if not exists producer_epoch (
    id int generated always as identity primary key,
    producer bigint references producer (id) on delete cascade,
    epoch smallint default 0 not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (producer, epoch)
);

create table if not exists producer_detail (
    id int generated always as identity primary key,
    producer_epoch int references producer_epoch (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    sequence int default 0 not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (producer_epoch, topition)
);

create table if not exists txn (
    id int generated always as identity primary key,
    cluster int references cluster (id) on delete cascade,
    name text,
    producer bigint references producer (id) on delete cascade,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (cluster, name)
);

create table if not exists txn_detail (
    id int generated always as identity primary key,
    "transaction" int references txn (id),
    producer_epoch int references producer_epoch (id),
    transaction_timeout_ms int not null,
    started_at timestamp,
    status text,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique ("transaction", producer_epoch)
);

create table if not exists txn_topition (
    id int generated always as identity primary key,
    txn_detail int references txn_detail (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (txn_detail, topition)
);

create table if not exists txn_produce_offset (
    id int generated always as identity primary key,
    txn_topition int references txn_topition (id) on delete cascade unique,
    offset_start bigint,
    offset_end bigint,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null
);

create table if not exists txn_offset_commit (
    id int generated always as identity primary key,
    txn_detail int references txn_detail (id) on delete cascade,
    consumer_group int references consumer_group (id) on delete cascade,
    generation_id int,
    member_id text,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (txn_detail, consumer_group)
);

create table if not exists txn_offset_commit_tp (
    id int generated always as identity primary key,
    offset_commit int references txn_offset_commit (id) on delete cascade,
    topition int references topition (id) on delete cascade,
    committed_offset bigint,
    leader_epoch int,
    metadata text,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (offset_commit, topition)
);

create table if not exists scram_credential (
    id int generated always as identity primary key,
    cluster int references cluster (id) on delete cascade not null,
    username text not null,
    mechanism int not null,
    salt bytea not null,
    iterations int not null,
    stored_key bytea not null,
    server_key bytea not null,
    last_updated timestamp default current_timestamp not null,
    created_at timestamp default current_timestamp not null,
    unique (cluster, username, mechanism)
);
