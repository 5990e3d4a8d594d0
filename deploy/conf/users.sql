-- Run as root over the server's socket once it is up. The replicator and the
-- tests connect over TCP as repl/repl; ALL PRIVILEGES on MariaDB 10.11 covers
-- REPLICATION SLAVE, BINLOG MONITOR (REPLICATION CLIENT), SELECT and the DDL
-- tests need to create their own databases.
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT ALL PRIVILEGES ON *.* TO 'repl'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
