//! Kubernetes resource quantities (`500m`, `1Gi`, `1e3`), held exactly.
//!
//! The apiserver never stores a quantity as a float, and neither do we: a [`Quantity`] is an
//! integer count of nano-units (10⁻⁹), the finest precision Kubernetes keeps. Parsing follows
//! apimachinery's `ParseQuantity`: the same grammar, rounding of finer precision *away from
//! zero* to the next nano-unit ("if you ask for some resource you get some"), and the cap of
//! binary-suffixed values at 2⁶³−1. `Display` prints the canonical form the apiserver echoes
//! back (`1.5` → `1500m`, `1.5Gi` → `1536Mi`), so error messages read like the real ones.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Nano-units in one unit.
const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// Nano-units in one milli-unit.
const NANOS_PER_MILLI: i128 = 1_000_000;
/// apimachinery caps binary-SI quantities at the largest int64.
const BINARY_CAP_UNITS: i128 = i64::MAX as i128;
/// More significant digits than this cannot be held exactly in an i128 of nano-units.
const MAX_SIGNIFICANT_DIGITS: usize = 38;

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not follow the quantity grammar (apimachinery's `ErrFormatWrong`).
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    /// The suffix is not one Kubernetes knows (apimachinery's `ErrSuffix`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The value is too large (or too precise) to be held exactly.
    #[error("quantity is out of range")]
    OutOfRange,
    /// A division by a zero quantity was asked for.
    #[error("division by a zero quantity")]
    DivideByZero,
}

/// How a quantity was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decimal SI suffixes (`m`, `k`, `M`...) or none.
    DecimalSi,
    /// Binary SI suffixes (`Ki`, `Mi`...).
    BinarySi,
    /// A decimal exponent (`1e3`).
    DecimalExponent,
}

/// An exact Kubernetes quantity. Equality and ordering compare values, not spelling.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Parses a Kubernetes quantity string.
pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
    s.parse()
}

impl Quantity {
    /// A quantity of `nanos` nano-units, printed in decimal SI form.
    pub const fn from_nanos(nanos: i128) -> Self {
        Self {
            nanos,
            format: Format::DecimalSi,
        }
    }

    /// A quantity of whole units (bytes, cores) printed in decimal SI form.
    pub const fn from_units(units: i64) -> Self {
        Self::from_nanos(units as i128 * NANOS_PER_UNIT)
    }

    /// A quantity of milli-units (millicores) printed in decimal SI form.
    pub const fn from_millis(millis: i64) -> Self {
        Self::from_nanos(millis as i128 * NANOS_PER_MILLI)
    }

    /// The exact value in nano-units.
    pub const fn nanos(&self) -> i128 {
        self.nanos
    }

    /// How the quantity was written.
    pub const fn format(&self) -> Format {
        self.format
    }

    /// True when the value is zero.
    pub const fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The value in whole units, rounded up away from zero (apimachinery's `Value()`).
    pub fn as_bytes_ceil(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_UNIT)
    }

    /// The value in milli-units, rounded up away from zero (apimachinery's `MilliValue()`).
    pub fn as_millis_ceil(&self) -> i128 {
        div_away_from_zero(self.nanos, NANOS_PER_MILLI)
    }

    /// `ceil(self / divisor)` computed exactly; a zero divisor is an error.
    pub fn divide_ceil(&self, divisor: &Quantity) -> Result<i128, QuantityError> {
        if divisor.nanos == 0 {
            return Err(QuantityError::DivideByZero);
        }
        Ok(div_ceil(self.nanos, divisor.nanos))
    }

    /// The sum of two quantities, keeping the left-hand format (as apimachinery's `Add`).
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format: self.format,
        })
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Integer division rounding towards positive infinity.
fn div_ceil(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d != 0 && ((n > 0) == (d > 0)) { q + 1 } else { q }
}

/// Integer division rounding away from zero.
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

/// The pieces of a quantity string, as apimachinery's `parseQuantityString` splits them.
struct Parts<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let digits_from = |start: usize| start + bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
    let int_end = digits_from(pos);
    let integer = &s[pos..int_end];
    pos = int_end;
    let mut fraction = "";
    if bytes.get(pos) == Some(&b'.') {
        let frac_end = digits_from(pos + 1);
        fraction = &s[pos + 1..frac_end];
        pos = frac_end;
    }
    let suffix_start = pos;
    pos += bytes[pos..].iter().take_while(|b| b"eEinumkKMGTP".contains(b)).count();
    if matches!(bytes.get(pos), Some(b'-' | b'+')) {
        pos += 1;
    }
    pos = digits_from(pos);
    if pos != bytes.len() {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        negative,
        integer,
        fraction,
        suffix: &s[suffix_start..],
    })
}

/// `(decimal exponent, binary exponent, format)` for a suffix.
fn interpret_suffix(suffix: &str) -> Result<(i64, u32, Format), QuantityError> {
    let decimal = |e| Ok((e, 0, Format::DecimalSi));
    let binary = |e| Ok((0, e, Format::BinarySi));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => match suffix.strip_prefix(['e', 'E']).map(str::parse::<i64>) {
            Some(Ok(e)) => Ok((e, 0, Format::DecimalExponent)),
            _ => Err(QuantityError::Suffix),
        },
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let parts = split(s)?;
        let (exp10, exp2, mut format) = interpret_suffix(parts.suffix)?;
        // All digits as one integer D with the value D × 10^(exp10 − fraction digits).
        let digits: String = parts.integer.chars().chain(parts.fraction.chars()).collect();
        let significant = digits.trim_start_matches('0');
        let trimmed = significant.trim_end_matches('0');
        if trimmed.is_empty() {
            return Ok(Quantity { nanos: 0, format });
        }
        if trimmed.len() > MAX_SIGNIFICANT_DIGITS {
            return Err(QuantityError::OutOfRange);
        }
        let trailing_zeros = (significant.len() - trimmed.len()) as i64;
        let mut value: u128 = trimmed.parse().map_err(|_| QuantityError::OutOfRange)?;
        value = value.checked_mul(1u128 << exp2).ok_or(QuantityError::OutOfRange)?;
        let scale = exp10
            .checked_add(9 + trailing_zeros)
            .and_then(|e| e.checked_sub(parts.fraction.len() as i64))
            .ok_or(QuantityError::OutOfRange)?;
        if scale >= 0 {
            let factor = u32::try_from(scale)
                .ok()
                .and_then(|e| 10u128.checked_pow(e))
                .ok_or(QuantityError::OutOfRange)?;
            value = value.checked_mul(factor).ok_or(QuantityError::OutOfRange)?;
        } else {
            // Finer than a nano-unit: round the magnitude up.
            let mut remainder = false;
            for _ in 0..scale.unsigned_abs() {
                if value == 0 {
                    break;
                }
                remainder |= !value.is_multiple_of(10);
                value /= 10;
            }
            if remainder {
                value += 1;
            }
        }
        let mut nanos = i128::try_from(value).map_err(|_| QuantityError::OutOfRange)?;
        if format == Format::BinarySi {
            nanos = nanos.min(BINARY_CAP_UNITS * NANOS_PER_UNIT);
            if nanos < NANOS_PER_UNIT {
                format = Format::DecimalSi;
            }
        }
        Ok(Quantity {
            nanos: if parts.negative { -nanos } else { nanos },
            format,
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let binary = self.format == Format::BinarySi
            && self.nanos.unsigned_abs() >= 1024 * NANOS_PER_UNIT as u128
            && self.nanos % NANOS_PER_UNIT == 0;
        if binary {
            let mut units = self.nanos / NANOS_PER_UNIT;
            let mut power = 0;
            while power < 6 && units % 1024 == 0 {
                units /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{units}{suffix}");
        }
        // Mantissa × 10^exponent with the exponent a multiple of three, mantissa integral.
        let mut mantissa = self.nanos;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        while exponent.rem_euclid(3) != 0 {
            let Some(scaled) = mantissa.checked_mul(10) else {
                break;
            };
            mantissa = scaled;
            exponent -= 1;
        }
        let suffix = match (self.format, exponent) {
            (_, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        write!(f, "{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests;
