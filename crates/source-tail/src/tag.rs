//! Tags derived from file paths, as fluentd's in_tail derives them.

use std::path::Path;

/// Expands every `*` in `pattern` to `path` with `/` replaced by `.`, runs of `.` collapsed to
/// one and a leading `.` dropped (fluentd's rule). A pattern without `*` is returned as is.
/// A path that is not UTF-8 is converted lossily.
///
/// ```
/// use std::path::Path;
/// use logferry_source_tail::expand_tag;
///
/// assert_eq!(expand_tag("s3.*", Path::new("/var/log/a.log")), "s3.var.log.a.log");
/// assert_eq!(expand_tag("app.*.raw", Path::new("./logs/x.log")), "app.logs.x.log.raw");
/// assert_eq!(expand_tag("fixed", Path::new("/var/log/a.log")), "fixed");
/// ```
pub fn expand_tag(pattern: &str, path: &Path) -> String {
    if !pattern.contains('*') {
        return pattern.to_owned();
    }
    let path = path.to_string_lossy();
    let mut dotted = String::with_capacity(path.len());
    for c in path.chars() {
        let c = if c == '/' { '.' } else { c };
        if c == '.' && (dotted.is_empty() || dotted.ends_with('.')) {
            continue;
        }
        dotted.push(c);
    }
    pattern.replace('*', &dotted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluentd_examples() {
        let t = |p: &str, path: &str| expand_tag(p, Path::new(path));
        assert_eq!(t("s3.*", "/var/log/a.log"), "s3.var.log.a.log");
        assert_eq!(t("*", "/var//log/a..log"), "var.log.a.log");
        assert_eq!(t("a.*.b.*", "x/y"), "a.x.y.b.x.y");
        assert_eq!(t("s3.*", "relative.log"), "s3.relative.log");
    }
}
