//! Lenient serde building blocks for reading upstream JSON.
//!
//! Upstreams disagree about types (`content` null or "", `tool_calls` null or
//! [], `choices` absent). These types accept any JSON value, so one odd field
//! never makes a whole chunk unreadable, and skip what they don't keep.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Visitor methods that return `$value` for the listed kinds of JSON value,
/// skipping the contents of sequences and maps.
macro_rules! ignore_values {
    ($value:expr; $($kind:ident),+) => { $(ignore_values!(@$kind $value);)+ };
    (@bool $value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@number $value:expr) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@string $value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@null $value:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    (@seq $value:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($value)
        }
    };
    (@map $value:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($value)
        }
    };
}

pub(super) use ignore_values;

/// Skips the rest of a sequence; returns how many elements it had.
pub(super) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<usize, A::Error> {
    let mut n = 0;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Skips the rest of a map; returns how many entries it had.
pub(super) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<usize, A::Error> {
    let mut n = 0;
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// `Some(T)` when the value is a JSON object, `None` for any other value.
pub(super) struct Obj<T>(pub(super) Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Obj<T> {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Obj<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            ignore_values!(Obj(None); bool, number, string, null, seq);
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Whether a value is present and non-null, and whether it is truthy as
/// Python sees it (openai-python tests `data.get("error")`): not null, false,
/// 0, "", [] or {}.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Shape {
    pub(super) non_null: bool,
    pub(super) truthy: bool,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        struct V;
        fn value(truthy: bool) -> Shape {
            Shape {
                non_null: true,
                truthy,
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shape, E> {
                Ok(value(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shape, E> {
                Ok(value(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
                Ok(value(v != 0))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
                Ok(value(v != 0.0))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
                Ok(value(!v.is_empty()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Shape, E> {
                Ok(value(!v.is_empty()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shape, A::Error> {
                Ok(value(drain_seq(seq)? > 0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                Ok(value(drain_map(map)? > 0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A token count: a non-negative integer (or an integral float) up to
/// [`MAX_TOKEN_COUNT`]; anything else counts as absent.
#[derive(Default)]
pub(super) struct Count(pub(super) Option<u64>);

/// The largest token count believed (2^32, far above any context window):
/// an absurd number from a broken upstream must not wrap the counters or
/// the cost it is added to.
pub const MAX_TOKEN_COUNT: u64 = 1 << 32;

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count((v <= MAX_TOKEN_COUNT).then_some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Ok(Count(
                    u64::try_from(v).ok().filter(|v| *v <= MAX_TOKEN_COUNT),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                // The range check keeps the `as` conversion exact.
                let integral = v.fract() == 0.0 && (0.0..=MAX_TOKEN_COUNT as f64).contains(&v);
                Ok(Count(integral.then_some(v as u64)))
            }
            ignore_values!(Count(None); bool, string, null, seq, map);
        }
        d.deserialize_any(V)
    }
}
