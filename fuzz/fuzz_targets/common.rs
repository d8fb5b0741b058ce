//! Glue shared by the targets: JSON values and names from libFuzzer's bytes.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// Any JSON value, at most `depth` levels deep.
pub fn json(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let top = if depth == 0 { 6 } else { 8 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::from(u.arbitrary::<bool>()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.arbitrary::<u64>()?),
        4 => Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        5 => Value::from(u.int_in_range(0u64..=999)?),
        6 => Value::from(u.arbitrary::<String>()?),
        7 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array((0..n).map(|_| json(u, depth - 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=3)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert(u.arbitrary::<String>()?, json(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// One of `names` most of the time, else any string.
pub fn name(u: &mut Unstructured<'_>, names: &[&str]) -> Result<String> {
    if u.ratio(4, 5)? {
        Ok((*u.choose(names)?).to_owned())
    } else {
        u.arbitrary()
    }
}

/// Up to `max` items made by `f`.
pub fn list<T>(
    u: &mut Unstructured<'_>,
    max: u32,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| f(u)).collect()
}
