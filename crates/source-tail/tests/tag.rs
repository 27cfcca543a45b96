//! Tag expansion over arbitrary paths.

use std::path::Path;

use logferry_source_tail::expand_tag;
use proptest::prelude::*;

proptest! {
    #[test]
    fn tag_is_the_dotted_path(
        absolute in any::<bool>(),
        components in prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_.-]{0,11}", 1..6),
    ) {
        let path = format!("{}{}", if absolute { "/" } else { "" }, components.join("/"));
        let tag = expand_tag("s3.*", Path::new(&path));
        // fluentd: '/' -> '.', runs of '.' collapsed, no leading '.'.
        let mut dotted = path.replace('/', ".");
        while dotted.contains("..") {
            dotted = dotted.replace("..", ".");
        }
        let dotted = dotted.trim_start_matches('.');
        prop_assert_eq!(&tag, &format!("s3.{dotted}"));
        prop_assert!(!tag.contains('/'));
        prop_assert!(!tag.contains(".."));
    }

    #[test]
    fn arbitrary_paths_never_panic(path in ".{0,64}", pattern in "[a-z.*]{0,8}") {
        let tag = expand_tag(&pattern, Path::new(&path));
        if !pattern.contains('*') {
            prop_assert_eq!(tag, pattern);
        } else {
            prop_assert!(!tag.contains('/'));
        }
    }
}

#[test]
fn fluentd_example() {
    assert_eq!(
        expand_tag("s3.*", Path::new("/var/log/a.log")),
        "s3.var.log.a.log"
    );
    assert_eq!(
        expand_tag("*.raw", Path::new("/var/log/a.log")),
        "var.log.a.log.raw"
    );
}
