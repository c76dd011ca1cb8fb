//! Address mapping: how a byte address picks a pseudo-channel, bank group,
//! bank, row and column.
//!
//! A mapping is written as digits from the least significant up, for example
//! `co:8 ch bg co ba ro`: the address (in bursts) is read as a mixed-radix
//! number whose lowest digit is 8 columns, then the pseudo-channel (all of
//! them, across stacks), then the bank group, the rest of the column, the
//! bank within its group, and the row. A digit without `:N` takes what is
//! left of its field; a field may be split over several digits (its low
//! digits first). With this example, 8 bursts (256 bytes of a 32-byte burst)
//! go to one pseudo-channel before the next, and successive 256-byte pieces
//! in one pseudo-channel rotate through the bank groups.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A coordinate field of the DRAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Channel,
    BankGroup,
    Bank,
    Row,
    Column,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Channel => "ch",
            Field::BankGroup => "bg",
            Field::Bank => "ba",
            Field::Row => "ro",
            Field::Column => "co",
        }
    }
}

/// A mapping as written: digits with an optional radix each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressMapping {
    digits: Vec<(Field, Option<u64>)>,
}

/// The sizes of each field, which resolve a mapping's open digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Organization {
    pub channels: u64,
    pub bank_groups: u64,
    pub banks_per_group: u64,
    /// Bursts per row (page size / burst size).
    pub columns: u64,
}

/// Where a burst lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Coord {
    pub channel: u32,
    pub bank_group: u32,
    /// Bank within its group.
    pub bank: u32,
    pub row: u64,
    pub column: u32,
}

/// A mapping with every digit's radix known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    digits: Vec<(Field, u64)>,
    /// For each column digit, the weight of its value in the column index.
    column_weights: Vec<u64>,
    /// Bursts that stay in one channel before the next (the channel interleave).
    pub interleave_bursts: u64,
}

impl std::str::FromStr for AddressMapping {
    type Err = String;
    fn from_str(text: &str) -> Result<AddressMapping, String> {
        let mut digits = Vec::new();
        for word in text.split_whitespace() {
            let (name, radix) = match word.split_once(':') {
                Some((n, r)) => {
                    let r: u64 =
                        r.parse().map_err(|_| format!("`{word}`: the radix after `:` must be a whole number"))?;
                    if r < 2 {
                        return Err(format!("`{word}`: a radix of at least 2 is needed"));
                    }
                    (n, Some(r))
                }
                None => (word, None),
            };
            let field = match name {
                "ch" => Field::Channel,
                "bg" => Field::BankGroup,
                "ba" => Field::Bank,
                "ro" => Field::Row,
                "co" => Field::Column,
                _ => return Err(format!("`{word}`: expected ch, bg, ba, co or ro (optionally with :N)")),
            };
            digits.push((field, radix));
        }
        for field in [Field::Channel, Field::BankGroup, Field::Bank, Field::Row, Field::Column] {
            if !digits.iter().any(|(f, _)| *f == field) {
                return Err(format!("the mapping has no `{}` digit", field.name()));
            }
        }
        match digits.last() {
            Some((Field::Row, None)) => {}
            _ => return Err("the last digit must be `ro` (the row takes what is left)".into()),
        }
        if digits.iter().filter(|(f, r)| *f == Field::Row && r.is_none()).count() > 1 {
            return Err("only one open `ro` digit is allowed".into());
        }
        Ok(AddressMapping { digits })
    }
}

impl fmt::Display for AddressMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .digits
            .iter()
            .map(|(field, radix)| radix.map_or(field.name().to_string(), |r| format!("{}:{r}", field.name())))
            .collect();
        f.write_str(&words.join(" "))
    }
}

impl Serialize for AddressMapping {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AddressMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e: String| {
            serde::de::Error::custom(format!("expected an address mapping such as \"co:8 ch bg co ba ro\": {e}"))
        })
    }
}

impl AddressMapping {
    /// Give every digit its radix for `org`; an error says which field does not fit.
    pub fn resolve(&self, org: &Organization) -> Result<Resolved, String> {
        let size = |f: Field| match f {
            Field::Channel => org.channels,
            Field::BankGroup => org.bank_groups,
            Field::Bank => org.banks_per_group,
            Field::Column => org.columns,
            Field::Row => u64::MAX,
        };
        let mut digits = Vec::new();
        for &(field, radix) in &self.digits {
            let fixed: u64 =
                self.digits.iter().filter(|(f, r)| *f == field && r.is_some()).map(|(_, r)| r.unwrap_or(1)).product();
            let open = self.digits.iter().filter(|(f, r)| *f == field && r.is_none()).count() as u64;
            let radix = match radix {
                Some(r) => r,
                None if field == Field::Row => u64::MAX,
                None => {
                    if open > 1 {
                        return Err(format!("`{}` appears more than once without a radix", field.name()));
                    }
                    if size(field) % fixed != 0 {
                        return Err(format!(
                            "`{}` digits multiply to {fixed}, which does not divide its {} values",
                            field.name(),
                            size(field)
                        ));
                    }
                    size(field) / fixed
                }
            };
            digits.push((field, radix));
        }
        for field in [Field::Channel, Field::BankGroup, Field::Bank, Field::Column] {
            let product: u64 = digits.iter().filter(|(f, _)| *f == field).map(|(_, r)| *r).product();
            if product != size(field) {
                return Err(format!("`{}` digits cover {product} values, but there are {}", field.name(), size(field)));
            }
        }
        let mut weight = 1;
        let mut column_weights = Vec::new();
        for &(field, radix) in &digits {
            if field == Field::Column {
                column_weights.push(weight);
                weight *= radix;
            }
        }
        let interleave_bursts = digits.iter().take_while(|(f, _)| *f != Field::Channel).map(|(_, r)| *r).product();
        Ok(Resolved { digits, column_weights, interleave_bursts })
    }
}

impl Resolved {
    /// The coordinate of burst number `burst` (the byte address over the burst size).
    pub fn locate(&self, mut burst: u64) -> Coord {
        let mut c = Coord { channel: 0, bank_group: 0, bank: 0, row: 0, column: 0 };
        let mut column_digit = 0;
        let (mut ch_w, mut bg_w, mut ba_w) = (1u64, 1u64, 1u64);
        for &(field, radix) in &self.digits {
            let digit = if radix == u64::MAX { burst } else { burst % radix };
            burst = if radix == u64::MAX { 0 } else { burst / radix };
            match field {
                Field::Channel => {
                    c.channel += (digit * ch_w) as u32;
                    ch_w *= radix;
                }
                Field::BankGroup => {
                    c.bank_group += (digit * bg_w) as u32;
                    bg_w *= radix;
                }
                Field::Bank => {
                    c.bank += (digit * ba_w) as u32;
                    ba_w *= radix;
                }
                Field::Column => {
                    c.column += (digit * self.column_weights[column_digit]) as u32;
                    column_digit += 1;
                }
                Field::Row => c.row = digit,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Organization {
        Organization { channels: 32, bank_groups: 4, banks_per_group: 4, columns: 32 }
    }

    #[test]
    fn parses_prints_and_resolves() {
        let m: AddressMapping = "co:8 ch bg co ba ro".parse().unwrap();
        assert_eq!(m.to_string(), "co:8 ch bg co ba ro");
        let r = m.resolve(&org()).unwrap();
        assert_eq!(r.interleave_bursts, 8);
        // Bursts 0..8 on channel 0, 8..16 on channel 1.
        assert_eq!(r.locate(7).channel, 0);
        assert_eq!(r.locate(8).channel, 1);
        // 256 bursts later (all 32 channels once) the same channel, next bank group.
        let c = r.locate(256);
        assert_eq!((c.channel, c.bank_group, c.column), (0, 1, 0));
        // After four bank groups, the next column block: column 8.
        let c = r.locate(256 * 4 + 3);
        assert_eq!((c.channel, c.bank_group, c.column), (0, 0, 11));
        // A full cycle of channels x groups x columns x banks moves to the next row.
        let c = r.locate(32 * 32 * 4 * 4);
        assert_eq!((c.row, c.bank, c.column), (1, 0, 0));
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!("co ch bg ba".parse::<AddressMapping>().is_err(), "no row");
        assert!("co ch bg ro ba".parse::<AddressMapping>().is_err(), "row not last");
        assert!("co:8 ch bg co ba ro xx".parse::<AddressMapping>().is_err());
        assert!("co:1 ch bg co ba ro".parse::<AddressMapping>().is_err());
        let m: AddressMapping = "co:3 ch bg co ba ro".parse().unwrap();
        assert!(m.resolve(&org()).unwrap_err().contains("does not divide"));
    }

    #[test]
    fn every_burst_has_one_place() {
        let r: Resolved = "co:2 ch bg co ba ro"
            .parse::<AddressMapping>()
            .unwrap()
            .resolve(&Organization { channels: 5, bank_groups: 2, banks_per_group: 2, columns: 4 })
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for b in 0..5 * 2 * 2 * 4 * 3 {
            assert!(seen.insert(r.locate(b)), "burst {b} collides");
        }
    }
}
