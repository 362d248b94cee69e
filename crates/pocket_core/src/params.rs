//! Model hyper-parameters passed from TS as a `key=value` list separated by whitespace, e.g.
//! `"d_model=1024 num_heads=16 context=250"`. Named keys keep the boundary readable and order-free.

use crate::error::{CoreError, Result};

/// Parsed `key=value` parameters.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = Vec::new();
        for item in text.split_whitespace() {
            let (k, v) = item.split_once('=').ok_or_else(|| CoreError::new(format!("bad parameter '{item}'")))?;
            out.push((k.to_string(), v.to_string()));
        }
        Ok(Self(out))
    }

    fn raw(&self, key: &str) -> Result<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| CoreError::new(format!("missing parameter '{key}'")))
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        let v = self.raw(key)?;
        v.parse().map_err(|_| CoreError::new(format!("parameter '{key}' is not an integer: '{v}'")))
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        let v = self.raw(key)?;
        v.parse().map_err(|_| CoreError::new(format!("parameter '{key}' is not a number: '{v}'")))
    }

    /// A comma-separated list of integers, e.g. `ratios=6,5,4`.
    pub fn usize_list(&self, key: &str) -> Result<Vec<usize>> {
        let v = self.raw(key)?;
        v.split(',')
            .map(|s| s.parse().map_err(|_| CoreError::new(format!("parameter '{key}' is not an integer list: '{v}'"))))
            .collect()
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.raw(key)? {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            v => Err(CoreError::new(format!("parameter '{key}' is not a boolean: '{v}'"))),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_missing() {
        let p = Params::parse("a=3 b=0.5 r=6,5,4 f=true").unwrap();
        assert_eq!(p.usize("a").unwrap(), 3);
        assert_eq!(p.f32("b").unwrap(), 0.5);
        assert_eq!(p.usize_list("r").unwrap(), vec![6, 5, 4]);
        assert!(p.bool("f").unwrap());
        assert_eq!(p.usize("zz").unwrap_err().0, "missing parameter 'zz'");
        assert!(Params::parse("oops").is_err());
    }
}
