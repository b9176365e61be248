//! CNI spec versions: which ones this runtime speaks, how to compare them,
//! and which one a configuration list gets (CNI 1.1 lets a list offer
//! several in `cniVersions`; the runtime takes the highest it speaks).

/// The versions whose results this runtime reads. 0.3.0 is the first with
/// the `ips`/`interfaces` result shape; CHECK arrived in 0.4.0.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A configuration list without any version is treated as this one.
pub const DEFAULT: &str = "1.0.0";

/// `major.minor.patch` as numbers; missing parts are 0, junk is `None`.
pub fn parse(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().splitn(3, '.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// Whether `v` is at least `min` (an unparsable `v` is not).
pub fn at_least(v: &str, min: &str) -> bool {
    matches!((parse(v), parse(min)), (Some(a), Some(b)) if a >= b)
}

/// The highest of `offered` this runtime speaks.
pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    offered
        .into_iter()
        .filter(|v| {
            SUPPORTED
                .iter()
                .any(|s| parse(s) == parse(v) && parse(v).is_some())
        })
        .max_by_key(|v| parse(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_choose() {
        assert_eq!(parse("1.0.0"), Some((1, 0, 0)));
        assert_eq!(parse("0.4"), Some((0, 4, 0)));
        assert_eq!(parse("x"), None);
        assert!(at_least("1.0.0", "0.4.0") && !at_least("0.3.1", "0.4.0"));
        assert_eq!(choose(["0.4.0", "1.1.0", "1.0.0", "9.9.9"]), Some("1.1.0"));
        assert_eq!(choose(["9.9.9"]), None);
    }
}
