//! The tables of the type-matrix test and their edge values.
//!
//! Value sets: A mostly the maximums, B mostly the minimums, C zero dates,
//! empty strings and other odd values; a fourth set (NULL) leaves every
//! nullable column NULL. Values are SQL expressions, run in a session with
//! `sql_mode = ''` and `time_zone = '+05:30'`.

use super::{Col, Kind, TableSpec};

/// A table with every MySQL/MariaDB column type, keyed by `id INT`.
pub fn types_table(db: &str) -> TableSpec {
    use Kind::*;
    let mut cols = vec![Col::key("id", "INT", Int)];
    let fixed: &[(&str, &str, Kind, [&str; 3])] = &[
        // integers at their limits
        ("ti", "TINYINT", Int, ["127", "-128", "0"]),
        ("tiu", "TINYINT UNSIGNED", Int, ["255", "0", "7"]),
        ("si", "SMALLINT", Int, ["32767", "-32768", "-1"]),
        ("siu", "SMALLINT UNSIGNED", Int, ["65535", "0", "1"]),
        ("mi", "MEDIUMINT", Int, ["8388607", "-8388608", "-2"]),
        (
            "miu",
            "MEDIUMINT UNSIGNED",
            Int,
            ["16777215", "0", "8388608"],
        ),
        ("i", "INT", Int, ["2147483647", "-2147483648", "42"]),
        ("iu", "INT UNSIGNED", Int, ["4294967295", "0", "2147483648"]),
        (
            "bi",
            "BIGINT",
            Int,
            ["9223372036854775807", "-9223372036854775808", "-1"],
        ),
        (
            "biu",
            "BIGINT UNSIGNED",
            Int,
            ["18446744073709551615", "0", "9223372036854775808"],
        ),
        // DECIMAL: 65 digits, small and zero scales, negatives, zero
        (
            "d65_30",
            "DECIMAL(65,30)",
            Decimal,
            [
                "99999999999999999999999999999999999.999999999999999999999999999999",
                "-99999999999999999999999999999999999.999999999999999999999999999999",
                "-0.000000000000000000000000000001",
            ],
        ),
        (
            "d65_0",
            "DECIMAL(65,0)",
            Decimal,
            [
                "99999999999999999999999999999999999999999999999999999999999999999",
                "-99999999999999999999999999999999999999999999999999999999999999999",
                "0",
            ],
        ),
        (
            "d10_2",
            "DECIMAL(10,2)",
            Decimal,
            ["-0.50", "0.00", "12345678.90"],
        ),
        (
            "d4_4",
            "DECIMAL(4,4)",
            Decimal,
            ["0.9999", "-0.9999", "0.0001"],
        ),
        (
            "d20_10",
            "DECIMAL(20,10)",
            Decimal,
            [
                "-1234567890.0123456789",
                "9999999999.9999999999",
                "-0.0000000001",
            ],
        ),
        ("d5_0", "DECIMAL(5,0)", Decimal, ["-99999", "99999", "0"]),
        ("d1_1", "DECIMAL(1,1)", Decimal, ["0.9", "-0.9", "0.0"]),
        // FLOAT / DOUBLE
        ("f", "FLOAT", Float, ["3.40282e38", "-1.17549e-38", "1.1"]),
        ("f2", "FLOAT", Float, ["-0.333333", "16777216", "0"]),
        (
            "dbl",
            "DOUBLE",
            Double,
            ["1.7976931348623157e308", "-2.2250738585072014e-308", "0.1"],
        ),
        (
            "dbl2",
            "DOUBLE",
            Double,
            ["3.141592653589793", "-1e-300", "123456.789"],
        ),
        // BIT
        ("b1", "BIT(1)", Bit, ["b'1'", "b'0'", "b'1'"]),
        ("b8", "BIT(8)", Bit, ["b'11111111'", "b'0'", "b'10000000'"]),
        (
            "b17",
            "BIT(17)",
            Bit,
            ["b'11111111111111111'", "b'0'", "b'10000000000000001'"],
        ),
        // dates, zero and partly zero dates included
        (
            "dt",
            "DATE",
            AsText,
            ["'9999-12-31'", "'1000-01-01'", "'0000-00-00'"],
        ),
        (
            "dt2",
            "DATE",
            AsText,
            ["'2024-02-29'", "'2024-00-15'", "'2024-05-00'"],
        ),
        (
            "dtmin",
            "DATETIME(6)",
            DateTime,
            [
                "'1000-01-01 00:00:00.000000'",
                "'2024-02-29 12:00:00.5'",
                "'0000-00-00 00:00:00'",
            ],
        ),
        // TIME edges beyond the TIME(n) series below
        (
            "tmx",
            "TIME(6)",
            AsText,
            ["'-00:00:00.000001'", "'00:00:00'", "'-12:00:00.5'"],
        ),
        (
            "tmy",
            "TIME(1)",
            AsText,
            ["'12:00:00.5'", "'-00:00:00.5'", "'-00:00:01.5'"],
        ),
        // YEAR (numeric 0 is the zero year)
        ("y", "YEAR", Year, ["2155", "1901", "0"]),
        ("y2", "YEAR", Year, ["2024", "1970", "2000"]),
        // utf8mb4 text
        ("c10", "CHAR(10)", Text, ["'héllo 😀'", "''", "'ab   '"]),
        (
            "c255",
            "CHAR(255)",
            Text,
            ["REPEAT('😀', 255)", "'x'", r#"'"quoted" \\ back\\slash'"#],
        ),
        (
            "vc",
            "VARCHAR(300)",
            Text,
            ["'tab\\there\\nnl\\r'", "REPEAT('é', 300)", "'trailing  '"],
        ),
        ("tt", "TINYTEXT", Text, ["'tiny 🎉'", "''", "'x'"]),
        (
            "tx",
            "TEXT",
            Text,
            ["'text 😀 é ñ 中文'", "'line1\\nline2'", "'a\\0b\\Zc'"],
        ),
        (
            "mt",
            "MEDIUMTEXT",
            Text,
            ["REPEAT('é😀', 12000)", "'m'", "''"],
        ),
        (
            "lt",
            "LONGTEXT",
            Text,
            ["REPEAT('x', 70000)", "'long'", "''"],
        ),
        // latin1 (cp1252) and utf8mb3 text
        (
            "vc_l1",
            "VARCHAR(20) CHARACTER SET latin1",
            Text,
            ["'café €'", "'œ‰…'", "''"],
        ),
        (
            "c_l1",
            "CHAR(8) CHARACTER SET latin1",
            Text,
            ["'é€'", "'Ä'", "'x'"],
        ),
        (
            "tx_l1",
            "TEXT CHARACTER SET latin1",
            Text,
            ["'€uro é ÿ'", "'plain'", "''"],
        ),
        (
            "vc3",
            "VARCHAR(10) CHARACTER SET utf8mb3",
            Text,
            ["'ñandú'", "'中文'", "''"],
        ),
        // binary
        (
            "bn4",
            "BINARY(4)",
            Bytes,
            ["'ab'", "X'00000000'", "X'FFFFFFFF'"],
        ),
        (
            "bn16",
            "BINARY(16)",
            Bytes,
            ["X'0102'", "X'00'", "X'FF00FF00FF00FF00FF00FF00FF00FF00'"],
        ),
        (
            "vb",
            "VARBINARY(20)",
            Bytes,
            ["X'00FF00'", "X''", "X'0000'"],
        ),
        ("tb", "TINYBLOB", Bytes, ["X'DEADBEEF'", "X''", "X'00'"]),
        (
            "bl",
            "BLOB",
            Bytes,
            ["X'00FF10'", "REPEAT(X'AB', 1000)", "X''"],
        ),
        (
            "mb",
            "MEDIUMBLOB",
            Bytes,
            ["REPEAT(X'AB', 70000)", "X'01'", "X''"],
        ),
        (
            "lb",
            "LONGBLOB",
            Bytes,
            ["REPEAT(X'00', 66000)", "X'CAFE'", "X''"],
        ),
        // ENUM / SET
        (
            "e",
            "ENUM('a','b','café','x y')",
            Text,
            ["'café'", "'a'", "''"],
        ),
        (
            "s",
            "SET('a','b','c','d','ü')",
            Text,
            ["'a,c,d'", "''", "'b,ü'"],
        ),
        // JSON (MariaDB: LONGTEXT with a json_valid check)
        (
            "j",
            "JSON",
            Json,
            [
                r#"'{"a":[1,2.5,"x"],"b":null,"n":{"é":"😀"},"big":18446744073709551615}'"#,
                "'[]'",
                r#"'"str"'"#,
            ],
        ),
        (
            "j2",
            "JSON",
            Json,
            [
                "'true'",
                "'-1.5e3'",
                r#"'{"deep":[[[[{"k":[1,{"q":"\\\\"}]}]]]]}'"#,
            ],
        ),
        // GEOMETRY
        (
            "g_pt",
            "POINT",
            Geometry,
            [
                "ST_GeomFromText('POINT(1 2)')",
                "ST_GeomFromText('POINT(-1.5 1e10)')",
                "ST_GeomFromText('POINT(0 0)', 4326)",
            ],
        ),
        (
            "g_poly",
            "POLYGON",
            Geometry,
            [
                "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))')",
                "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326)",
                "ST_GeomFromText('POLYGON((-1 -1,1 -1,1 1,-1 -1))')",
            ],
        ),
        (
            "g",
            "GEOMETRY",
            Geometry,
            [
                "ST_GeomFromText('LINESTRING(0 0,1 1,2 2)')",
                "ST_GeomFromText('MULTIPOINT(1 1,2 2)')",
                "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))')",
            ],
        ),
    ];
    for (name, ty, kind, vals) in fixed {
        cols.push(Col::new(*name, *ty, *kind, *vals));
    }

    let b64_max = format!("b'{}'", "1".repeat(64));
    let b64_top = format!("b'1{}'", "0".repeat(63));
    cols.push(Col::new(
        "b64",
        "BIT(64)",
        Kind::Bit,
        [&b64_max, "b'0'", &b64_top],
    ));

    // DATETIME, TIMESTAMP and TIME with every fractional precision
    for fsp in 0..=6u8 {
        cols.push(Col::new(
            format!("dtm{fsp}"),
            format!("DATETIME({fsp})"),
            Kind::DateTime,
            [
                "'9999-12-31 23:59:59.999999'",
                "'2024-01-02 03:04:05.123456'",
                "'0000-00-00 00:00:00'",
            ],
        ));
        // +05:30 in this session: A is the TIMESTAMP maximum, C the minimum
        // (odd fsp) or the zero timestamp (even fsp)
        let low = if fsp % 2 == 1 {
            "'1970-01-01 05:30:01'"
        } else {
            "'0000-00-00 00:00:00'"
        };
        cols.push(Col::new(
            format!("ts{fsp}"),
            format!("TIMESTAMP({fsp}) NULL DEFAULT NULL"),
            Kind::Timestamp(fsp),
            [
                "'2038-01-19 08:44:07.999999'",
                "'2024-06-30 18:00:00.120456'",
                low,
            ],
        ));
        let frac = &"987654"[..fsp as usize];
        let c = if fsp == 0 {
            "'12:00:00'".to_string()
        } else {
            format!("'-{fsp:02}:34:56.{frac}'")
        };
        cols.push(Col::new(
            format!("tm{fsp}"),
            format!("TIME({fsp})"),
            Kind::AsText,
            ["'838:59:59'", "'-838:59:59'", &c],
        ));
    }

    // a 64-label SET (8 bytes) and a 300-label ENUM (2 bytes)
    let labels: Vec<String> = (0..64).map(|i| format!("'m{i}'")).collect();
    cols.push(Col::new(
        "s64",
        format!("SET({})", labels.join(",")),
        Kind::Text,
        ["'m0,m63'", "'m1,m2,m62'", "''"],
    ));
    let labels: Vec<String> = (0..300).map(|i| format!("'l{i}'")).collect();
    cols.push(Col::new(
        "e300",
        format!("ENUM({})", labels.join(",")),
        Kind::Text,
        ["'l299'", "'l0'", "'l255'"],
    ));

    TableSpec {
        db: db.into(),
        name: "types".into(),
        cols,
        pk: vec!["id".into()],
    }
}

/// A wide table: a two-column key in the opposite order of the columns and
/// 250 more columns of mixed types (set C leaves every odd one NULL).
pub fn wide_table(db: &str) -> TableSpec {
    let mut cols = vec![
        Col::key("k1", "INT", Kind::Int),
        Col::key("k2", "VARCHAR(16)", Kind::Text),
    ];
    for i in 1..=250u32 {
        let name = format!("c{i:03}");
        let null_c = i % 2 == 1;
        let pick = |c: String| if null_c { "NULL".to_string() } else { c };
        let (ty, kind, a, b, c) = match i % 6 {
            0 => (
                "INT",
                Kind::Int,
                format!("{i}"),
                format!("-{i}"),
                pick("0".into()),
            ),
            1 => (
                "VARCHAR(16)",
                Kind::Text,
                format!("'v{i}'"),
                format!("'é{i}😀'"),
                pick("''".into()),
            ),
            2 => (
                "DECIMAL(12,3)",
                Kind::Decimal,
                format!("{i}.125"),
                format!("-{i}.5"),
                pick("0".into()),
            ),
            3 => (
                "DATETIME(3)",
                Kind::DateTime,
                format!("'2024-01-01 00:00:{:02}.5'", i % 60),
                "'1999-12-31 23:59:59.999'".into(),
                pick("'0000-00-00 00:00:00'".into()),
            ),
            4 => (
                "BIGINT UNSIGNED",
                Kind::Int,
                format!("{}", u64::MAX - u64::from(i)),
                format!("{i}"),
                pick("0".into()),
            ),
            _ => (
                "DOUBLE",
                Kind::Double,
                format!("{i}.25e10"),
                format!("-{i}e-20"),
                pick("0".into()),
            ),
        };
        cols.push(Col {
            name,
            ty: ty.into(),
            kind,
            vals: [a, b, c],
            key: false,
        });
    }
    TableSpec {
        db: db.into(),
        name: "wide".into(),
        cols,
        pk: vec!["k2".into(), "k1".into()],
    }
}

/// A table without a primary key (the key is the whole row).
pub fn nopk_table(db: &str) -> TableSpec {
    TableSpec {
        db: db.into(),
        name: "nopk".into(),
        cols: vec![
            Col::new("a", "INT", Kind::Int, ["1", "-2", "3"]),
            Col::new("b", "VARCHAR(8)", Kind::Text, ["'x'", "'ÿ'", "''"]),
            Col::new("f", "FLOAT", Kind::Float, ["1.1", "-0.5", "0"]),
        ],
        pk: Vec::new(),
    }
}

/// The column the live ALTER adds to `nopk`, first.
pub fn nopk_z_col() -> Col {
    Col::new(
        "z",
        "BIGINT UNSIGNED",
        Kind::Int,
        ["18446744073709551615", "0", "5"],
    )
}

/// The table the ALTER test changes; text columns hold valid JSON text so
/// that a JSON flag on the wrong column shows.
pub fn evolving_table(db: &str) -> TableSpec {
    TableSpec {
        db: db.into(),
        name: "evolve".into(),
        cols: vec![
            Col::key("id", "INT", Kind::Int),
            Col::new("a", "VARCHAR(10)", Kind::Text, ["'[1]'", "'[2]'", "'{}'"]),
            Col::new(
                "doc",
                "JSON",
                Kind::Json,
                [r#"'{"v":1}'"#, r#"'{"v":2}'"#, "'[3]'"],
            ),
            Col::new("note", "TEXT", Kind::Text, ["'7'", "'\"s\"'", "'null'"]),
            Col::new("n", "INT", Kind::Int, ["10", "20", "30"]),
        ],
        pk: vec!["id".into()],
    }
}

/// Columns the ALTER test adds.
pub fn extra_col() -> Col {
    Col::new(
        "extra",
        "VARCHAR(10) DEFAULT 'x'",
        Kind::Text,
        ["'8'", "'[9]'", "'true'"],
    )
}

pub fn tail_json_col() -> Col {
    Col::new("tail", "JSON", Kind::Json, ["'[\"t\"]'", "'{}'", "'0'"])
}
