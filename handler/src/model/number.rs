//! DynamoDB's number type: an exact decimal of at most 38 significant digits whose magnitude
//! lies between 1E-130 and 9.9999999999999999999999999999999999999E+125, or zero.

use std::cmp::Ordering;
use std::fmt;

use crate::error::{ApiError, ApiResult};

const MAX_DIGITS: usize = 38;
const MAX_EXPONENT: i64 = 125;
const MIN_EXPONENT: i64 = -130;
const NOT_NUMERIC: &str = "The parameter cannot be converted to a numeric value";
const OVERFLOW: &str = "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDERFLOW: &str = "Number underflow. Attempting to store a number with magnitude smaller than supported range";

/// An exact decimal in canonical form: `0.d₁d₂…dₙ × 10^(exponent+1)`, written the scientific way as
/// `d₁.d₂…dₙ × 10^exponent`. The digits carry no leading or trailing zeros, so every value has
/// exactly one representation and the derived `Eq`/`Hash` compare numeric values ("1.0" == "1").
/// Zero has no digits, exponent 0 and is never negative.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number {
    pub(super) negative: bool,
    /// Each element is a decimal digit 0..=9; empty for zero.
    pub(super) digits: Vec<u8>,
    /// Power of ten of the first digit; within `MIN_EXPONENT..=MAX_EXPONENT` unless zero.
    pub(super) exponent: i32,
}

impl Number {
    const ZERO: Number = Number { negative: false, digits: Vec::new(), exponent: 0 };

    /// The whole part of a value that is not negative, when it fits a `u64` (a time to live's
    /// epoch seconds); none otherwise.
    pub fn whole_part(&self) -> Option<u64> {
        if self.negative {
            return None;
        }
        if self.exponent < 0 || self.digits.is_empty() {
            return Some(0);
        }
        let places = usize::try_from(self.exponent).ok()? + 1;
        let mut digits = self.digits.iter().copied().chain(std::iter::repeat(0)).take(places);
        digits.try_fold(0u64, |whole, digit| whole.checked_mul(10)?.checked_add(u64::from(digit)))
    }

    /// Parses a DynamoDB N string ("-12.50", "1e3", "+5", ".5", "5.") and validates it as
    /// DynamoDB does. The syntax is Java's `BigDecimal` (DynamoDB's own), and the checks run in
    /// DynamoDB's order: magnitude first, then precision.
    pub fn parse(s: &str) -> ApiResult<Number> {
        let invalid = || {
            // DynamoDB echoes the text after a colon, except when there is none.
            ApiError::validation(if s.is_empty() { NOT_NUMERIC.to_owned() } else { format!("{NOT_NUMERIC}: {s}") })
        };
        let (negative, unsigned) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            // `i32` like Java's: a longer exponent is a format error there, not an overflow.
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().map_err(|_| invalid())?),
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let text = [int, frac].concat();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = text.bytes().map(|b| b - b'0').collect::<Vec<_>>();
        let (Some(first), Some(last)) = (digits.iter().position(|&d| d != 0), digits.iter().rposition(|&d| d != 0))
        else {
            return Ok(Number::ZERO);
        };
        // The first significant digit sits `int.len() - 1 - first` places left of the point.
        let scientific = int.len() as i64 - 1 - first as i64 + i64::from(exponent);
        if scientific > MAX_EXPONENT {
            return Err(ApiError::validation(OVERFLOW));
        }
        if scientific < MIN_EXPONENT {
            return Err(ApiError::validation(UNDERFLOW));
        }
        if last - first + 1 > MAX_DIGITS {
            return Err(ApiError::validation("Attempting to store more than 38 significant digits in a Number"));
        }
        Ok(Number { negative, digits: digits[first..=last].to_vec(), exponent: scientific as i32 })
    }

    pub(super) fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// `self + other`, exact, as DynamoDB's `+` and `ADD` compute it.
    pub fn add(&self, other: &Number) -> ApiResult<Number> {
        self.plus(other, other.negative)
    }

    /// `self - other`, exact, as DynamoDB's `-` computes it.
    pub fn sub(&self, other: &Number) -> ApiResult<Number> {
        self.plus(other, !other.negative)
    }

    /// `self + |other|` with `other_negative` as the sign of the second term. The sum is computed
    /// exactly and never rounded: DynamoDB refuses a result outside the range, and also one that
    /// needs more than 38 digits (1E50 + 1), the latter with its overflow message.
    fn plus(&self, other: &Number, other_negative: bool) -> ApiResult<Number> {
        if other.is_zero() {
            return Ok(self.clone());
        }
        if self.is_zero() {
            return Ok(Number { negative: other_negative, ..other.clone() });
        }
        // Both terms as little-endian digit columns from the lower of their last digits' powers
        // of ten up to one above the higher first digit (room for a carry). Valid numbers span
        // at most 10^-167..10^126, so this is a few hundred columns at worst.
        let last = |n: &Number| i64::from(n.exponent) + 1 - n.digits.len() as i64;
        let low = last(self).min(last(other));
        let width = (i64::from(self.exponent.max(other.exponent)) + 2 - low) as usize;
        let columns = |n: &Number| {
            let mut column = vec![0u8; width];
            for (k, &digit) in n.digits.iter().enumerate() {
                column[(i64::from(n.exponent) - k as i64 - low) as usize] = digit;
            }
            column
        };
        let (a, b) = (columns(self), columns(other));
        let (negative, sum) = if self.negative == other_negative {
            (self.negative, add_columns(&a, &b))
        } else {
            // Different signs: the larger magnitude minus the smaller, with the larger's sign.
            match (self.exponent, &self.digits).cmp(&(other.exponent, &other.digits)) {
                Ordering::Equal => return Ok(Number::ZERO),
                Ordering::Greater => (self.negative, subtract_columns(&a, &b)),
                Ordering::Less => (other_negative, subtract_columns(&b, &a)),
            }
        };
        let (Some(top), Some(bottom)) = (sum.iter().rposition(|&d| d != 0), sum.iter().position(|&d| d != 0)) else {
            return Ok(Number::ZERO);
        };
        let exponent = low + top as i64;
        if exponent > MAX_EXPONENT {
            return Err(ApiError::validation(OVERFLOW));
        }
        if exponent < MIN_EXPONENT {
            return Err(ApiError::validation(UNDERFLOW));
        }
        if top - bottom + 1 > MAX_DIGITS {
            return Err(ApiError::validation(OVERFLOW));
        }
        let digits = sum[bottom..=top].iter().rev().copied().collect();
        Ok(Number { negative, digits, exponent: exponent as i32 })
    }
}

/// Column-wise sum of two little-endian digit rows of equal width (the top column stays free).
fn add_columns(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut carry = 0;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let total = x + y + carry;
            carry = total / 10;
            total % 10
        })
        .collect()
}

/// Column-wise `a - b` of two little-endian digit rows of equal width, `a` the larger.
fn subtract_columns(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut borrow = 0;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let taken = y + borrow;
            borrow = u8::from(x < taken);
            x + 10 * borrow - taken
        })
        .collect()
}

/// Counts and lengths (what `size()` returns) as numbers.
impl From<usize> for Number {
    fn from(n: usize) -> Number {
        let text = n.to_string();
        let significant = text.trim_end_matches('0');
        if significant.is_empty() {
            return Number::ZERO;
        }
        Number {
            negative: false,
            digits: significant.bytes().map(|b| b - b'0').collect(),
            exponent: text.len() as i32 - 1,
        }
    }
}

/// The plain decimal DynamoDB returns: no exponent, no trailing fractional zeros, no '+'.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let sign = if self.negative { "-" } else { "" };
        let digits = self.digits.iter().map(|&d| char::from(b'0' + d)).collect::<String>();
        // Digits left of the point; may be ≤ 0 (a pure fraction) or past the last digit.
        let int_len = self.exponent as isize + 1;
        if int_len <= 0 {
            write!(f, "{sign}0.{}{digits}", "0".repeat(int_len.unsigned_abs()))
        } else if int_len as usize >= digits.len() {
            write!(f, "{sign}{digits}{}", "0".repeat(int_len as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(int_len as usize);
            write!(f, "{sign}{int}.{frac}")
        }
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let class = |n: &Number| {
            if n.is_zero() {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        };
        class(self).cmp(&class(other)).then_with(|| {
            // Same sign: the larger exponent is the larger magnitude, then digit by digit (a
            // shorter digit list that is a prefix is smaller: it has no trailing zeros).
            let magnitude = self.exponent.cmp(&other.exponent).then_with(|| self.digits.cmp(&other.digits));
            if self.negative { magnitude.reverse() } else { magnitude }
        })
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    fn err(s: &str) -> String {
        Number::parse(s).unwrap_err().message
    }

    #[test]
    fn whole_part_of_epoch_seconds() {
        for (input, whole) in [
            ("1700000000", Some(1_700_000_000)),
            ("1700000000.9", Some(1_700_000_000)),
            ("1.7e9", Some(1_700_000_000)),
            ("0.5", Some(0)),
            ("0", Some(0)),
            ("-1", None),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("1e30", None),
        ] {
            assert_eq!(n(input).whole_part(), whole, "{input}");
        }
    }

    #[test]
    fn canonical_display() {
        for (input, shown) in [
            ("1.50", "1.5"),
            ("-0.0125", "-0.0125"),
            ("1e3", "1000"),
            ("-0", "0"),
            ("0.000", "0"),
            ("+5", "5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("007.100", "7.1"),
            ("12.5E-3", "0.0125"),
            ("1.5e1", "15"),
            ("-1E+2", "-100"),
            ("123.456", "123.456"),
            ("0e999", "0"),
            ("1E-130", &format!("0.{}1", "0".repeat(129))),
            ("1E125", &format!("1{}", "0".repeat(125))),
        ] {
            assert_eq!(n(input).to_string(), shown, "{input}");
        }
    }

    #[test]
    fn equal_values_are_equal_numbers() {
        let one = n("1");
        for same in ["1.0", "10e-1", "0.1e1", "+1", "001.000", "1E0"] {
            assert_eq!(n(same), one, "{same}");
            assert_eq!(n(same).cmp(&one), Ordering::Equal);
        }
        assert_eq!(n("-0"), n("0"));
        assert!(n("-1") < n("-0.5") && n("-0.5") < n("0") && n("0") < n("0.5"));
        assert!(n("1.2") < n("1.23") && n("-1.2") > n("-1.23"));
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert_eq!(err(""), NOT_NUMERIC);
        for bad in [
            "abc",
            " 1",
            "1 ",
            ".",
            "-",
            "+",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "--1",
            "1e5e5",
            "0x10",
            "NaN",
            "Infinity",
            "1,5",
            "١",
            "1e99999999999",
        ] {
            assert_eq!(err(bad), format!("{NOT_NUMERIC}: {bad}"), "{bad}");
        }
        assert_eq!(Number::parse("abc").unwrap_err().kind, crate::error::ErrorKind::Validation);
    }

    #[test]
    fn enforces_range_and_precision() {
        let overflow = "Number overflow. Attempting to store a number with magnitude larger than supported range";
        let underflow = "Number underflow. Attempting to store a number with magnitude smaller than supported range";
        let precision = "Attempting to store more than 38 significant digits in a Number";
        assert_eq!(err("1e126"), overflow);
        assert_eq!(err("-1e126"), overflow);
        assert_eq!(err("1e-131"), underflow);
        assert_eq!(err("-0.1e-130"), underflow);
        assert_eq!(err("123456789012345678901234567890123456789"), precision);
        assert_eq!(err("-1.23456789012345678901234567890123456789"), precision);
        // Magnitude is checked before precision.
        assert_eq!(err(&format!("{}e200", "1".repeat(39))), overflow);
        // The limits themselves are fine; zeros never count as significant.
        n("9.9999999999999999999999999999999999999E+125");
        n("-9.9999999999999999999999999999999999999E+125");
        n("1E-130");
        n("-1E-130");
        n(&format!("00012345678901234567890123456789012345678{}", "0".repeat(80)));
        n("0e-99999");
    }

    #[test]
    fn adds_and_subtracts_exactly() {
        for (a, b, sum, difference) in [
            ("0.1", "0.2", "0.3", "-0.1"),
            ("1", "10000000000000000000000", "10000000000000000000001", "-9999999999999999999999"),
            ("5", "-5", "0", "10"),
            ("-1.5", "-2.25", "-3.75", "0.75"),
            ("0", "-7", "-7", "7"),
            ("-7", "0", "-7", "-7"),
            ("0", "0", "0", "0"),
            ("99", "1", "100", "98"),
            ("1E125", "-1E125", "0", "2E125"),
            (
                "9.9999999999999999999999999999999999999E+125",
                "0",
                "9.9999999999999999999999999999999999999E+125",
                "9.9999999999999999999999999999999999999E+125",
            ),
            ("1E-130", "1E-130", "2E-130", "0"),
            (
                "12345678901234567890123456789012345678",
                "2",
                "12345678901234567890123456789012345680",
                "12345678901234567890123456789012345676",
            ),
            (
                "1.000000000000000000000000000000000001",
                "-0.000000000000000000000000000000000001",
                "1",
                "1.000000000000000000000000000000000002",
            ),
        ] {
            assert_eq!(n(a).add(&n(b)), Ok(n(sum)), "{a} + {b}");
            assert_eq!(n(a).sub(&n(b)), Ok(n(difference)), "{a} - {b}");
            assert_eq!(n(b).add(&n(a)), Ok(n(sum)), "{b} + {a}");
        }
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("-3").add(&n("3")).unwrap().to_string(), "0");
    }

    #[test]
    fn arithmetic_fails_as_dynamodb_does() {
        let overflow = "Number overflow. Attempting to store a number with magnitude larger than supported range";
        let underflow = "Number underflow. Attempting to store a number with magnitude smaller than supported range";
        let fails = |r: ApiResult<Number>| r.unwrap_err().message;
        assert_eq!(fails(n("9e125").add(&n("9e125"))), overflow);
        assert_eq!(fails(n("9e125").sub(&n("-9e125"))), overflow);
        assert_eq!(fails(n("-9e125").sub(&n("9e125"))), overflow);
        // An exact result of more than 38 digits: DynamoDB answers with its overflow message.
        assert_eq!(fails(n("1e50").add(&n("1"))), overflow);
        assert_eq!(fails(n("1e50").sub(&n("1"))), overflow);
        assert_eq!(fails(n("1").add(&n("1e-50"))), overflow);
        // Cancellation below the smallest magnitude.
        let tiny = "1.0000000000000000000000000000000000001e-100";
        assert_eq!(fails(n(tiny).sub(&n("1e-100"))), underflow);
        assert_eq!(n(tiny).sub(&n(tiny)), Ok(n("0")));
    }

    #[test]
    fn counts_become_numbers() {
        for count in [0usize, 1, 7, 10, 100, 120, 1234567, usize::MAX] {
            assert_eq!(Number::from(count), n(&count.to_string()), "{count}");
        }
    }

    /// A random number as text, in any of the shapes DynamoDB accepts.
    fn number_text() -> impl Strategy<Value = String> {
        (prop_oneof![Just(""), Just("-"), Just("+")], "[0-9]{1,38}", 0usize..=38, -100i32..100, any::<bool>()).prop_map(
            |(sign, digits, point, exp, upper)| {
                let point = point.min(digits.len());
                let e = if upper { 'E' } else { 'e' };
                format!("{sign}{}.{}{e}{exp}", &digits[..point], &digits[point..])
            },
        )
    }

    fn number() -> impl Strategy<Value = Number> {
        number_text().prop_filter_map("out of range", |text| Number::parse(&text).ok())
    }

    /// Floats spread over DynamoDB's whole range (a raw f64 mostly lies outside it).
    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            (any::<bool>(), 1.0f64..10.0, -129i32..=124).prop_map(|(negative, m, e)| {
                let f = format!("{m}e{e}").parse::<f64>().unwrap();
                if negative { -f } else { f }
            }),
        ]
    }

    const MAX_38: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
    /// Terms whose sums and differences still fit an i128.
    const MAX_SUM: i128 = i128::MAX / 2;

    proptest! {
        #[test]
        fn display_round_trips(a in number()) {
            let shown = a.to_string();
            prop_assert_eq!(Number::parse(&shown).unwrap(), a.clone());
            prop_assert_eq!(Number::parse(&shown).unwrap().to_string(), shown);
        }

        #[test]
        fn order_matches_integers(a in -MAX_38..=MAX_38, b in -MAX_38..=MAX_38, scale in -90i32..=80) {
            let (x, y) = (n(&format!("{a}e{scale}")), n(&format!("{b}e{scale}")));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(n(&a.to_string()).to_string(), a.to_string());
        }

        #[test]
        fn order_matches_i64(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(n(&a.to_string()).cmp(&n(&b.to_string())), a.cmp(&b));
        }

        #[test]
        fn order_matches_f64(a in float(), b in float(), step in any::<bool>()) {
            // `{:e}` is the shortest decimal that reads back as the same f64, so distinct
            // floats give distinct decimals in the same order; `step` also tries neighbours.
            let b = if step && a != 0.0 { f64::from_bits(a.to_bits() + 1) } else { b };
            let (x, y) = (n(&format!("{a:e}")), n(&format!("{b:e}")));
            prop_assert_eq!(x.cmp(&y), a.partial_cmp(&b).unwrap());
        }

        #[test]
        fn arithmetic_matches_i128(
            a in -MAX_SUM..=MAX_SUM,
            b in -MAX_SUM..=MAX_SUM,
            scale in -90i32..=80,
        ) {
            let (x, y) = (n(&format!("{a}e{scale}")), n(&format!("{b}e{scale}")));
            for (got, exact) in [(x.add(&y), a + b), (x.sub(&y), a - b), (y.sub(&x), b - a)] {
                let digits = exact.unsigned_abs().to_string();
                if digits.trim_end_matches('0').len() > MAX_DIGITS {
                    prop_assert_eq!(got.unwrap_err().message, OVERFLOW);
                } else {
                    prop_assert_eq!(got, Ok(n(&format!("{exact}e{scale}"))));
                }
            }
        }

        #[test]
        fn adding_then_subtracting_gives_back(a in number(), b in number()) {
            if let Ok(sum) = a.add(&b) {
                prop_assert_eq!(sum.sub(&b), Ok(a.clone()));
                prop_assert_eq!(b.add(&a), Ok(sum));
            }
            if let Ok(difference) = a.sub(&b) {
                prop_assert_eq!(difference.add(&b), Ok(a));
            }
        }

        #[test]
        fn same_value_in_another_shape_is_equal(a in -MAX_38..=MAX_38, scale in -90i32..=80) {
            let plain = n(&format!("{a}e{scale}"));
            prop_assert_eq!(n(&format!("{a}0e{}", scale - 1)), plain.clone());
            prop_assert_eq!(n(&format!("{a}.000E{scale}")), plain);
        }
    }
}
