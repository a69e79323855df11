use super::*;

#[test]
fn parses_to_exact_nanos() {
    let cases: &[(&str, i128)] = &[
        ("0", 0),
        ("1", 1_000_000_000),
        ("500m", 500_000_000),
        ("0.5", 500_000_000),
        (".5", 500_000_000),
        ("5.", 5_000_000_000),
        ("+2", 2_000_000_000),
        ("-2", -2_000_000_000),
        ("1k", 1_000_000_000_000),
        ("1Ki", 1024 * 1_000_000_000),
        ("1.5Gi", 1_610_612_736 * 1_000_000_000),
        ("1e3", 1_000_000_000_000),
        ("1E3", 1_000_000_000_000),
        ("1E", 1_000_000_000_000_000_000_000_000_000),
        ("12e-1", 1_200_000_000),
        ("1n", 1),
        ("1u", 1_000),
        ("0.1n", 1),
        ("-0.1n", -1),
        ("0.0000000011", 2),
        ("100Mi", 104_857_600 * 1_000_000_000),
        ("16Ei", i64::MAX as i128 * 1_000_000_000),
    ];
    for (input, nanos) in cases {
        assert_eq!(parse(input).map(|q| q.nanos()), Ok(*nanos), "{input}");
    }
}

#[test]
fn rejects_bad_input() {
    let cases: &[(&str, QuantityError)] = &[
        ("", QuantityError::Format),
        ("abc", QuantityError::Format),
        ("1 ", QuantityError::Format),
        ("1.2.3", QuantityError::Format),
        ("1K", QuantityError::Suffix),
        ("1Gi5", QuantityError::Suffix),
        ("1e", QuantityError::Suffix),
        ("1mm", QuantityError::Suffix),
        ("1e400", QuantityError::OutOfRange),
    ];
    for (input, err) in cases {
        assert_eq!(parse(input), Err(err.clone()), "{input}");
    }
}

#[test]
fn displays_canonical_form() {
    let cases = [
        ("1.5", "1500m"),
        ("1.5Gi", "1536Mi"),
        ("1Gi", "1Gi"),
        ("1024", "1024"),
        ("0.5Ki", "512"),
        ("100m", "100m"),
        ("0.1", "100m"),
        ("1e3", "1e3"),
        ("12e2", "1200"),
        ("2000", "2k"),
        ("1Mi", "1Mi"),
        ("-1500m", "-1500m"),
        ("0Gi", "0"),
        ("1n", "1n"),
    ];
    for (input, shown) in cases {
        assert_eq!(parse(input).unwrap().to_string(), shown, "{input}");
    }
}

#[test]
fn rounds_and_divides() {
    // (value, as_bytes_ceil, as_millis_ceil)
    let cases = [("1500m", 2, 1500), ("1", 1, 1000), ("0.1m", 1, 1), ("-1.5", -2, -1500)];
    for (input, bytes, millis) in cases {
        let q = parse(input).unwrap();
        assert_eq!((q.as_bytes_ceil(), q.as_millis_ceil()), (bytes, millis), "{input}");
    }
    let divisions = [("1Gi", "1Mi", Ok(1024)), ("1500m", "1", Ok(2)), ("1", "0", Err(()))];
    for (value, divisor, expected) in divisions {
        let got = parse(value).unwrap().divide_ceil(&parse(divisor).unwrap());
        assert_eq!(got.map_err(|_| ()), expected, "{value}/{divisor}");
    }
}

#[test]
fn compares_values_not_spelling() {
    assert_eq!(parse("1Ki").unwrap(), parse("1024").unwrap());
    assert!(parse("1Gi").unwrap() > parse("1G").unwrap());
    assert_eq!(
        parse("1").unwrap().checked_add(&parse("500m").unwrap()),
        parse("1.5").ok()
    );
}
