//! The matcher's tests: kubelet's own cases, Go's path.Match and url.Parse vectors, the index
//! against the linear reference.

use super::matcher::*;
use super::pathmatch::*;
use super::urls::*;
use super::*;

fn m(glob: &str, target: &str) -> bool {
    urls_match(glob, target)
}

#[test]
fn kubelet_url_cases() {
    // keyring_test.go TestURLsMatch
    assert!(m("*.kubernetes.io", "prefix.kubernetes.io"));
    assert!(m("prefix.*.io", "prefix.kubernetes.io"));
    assert!(m("prefix.kubernetes.*", "prefix.kubernetes.io"));
    assert!(m("*-good.kubernetes.io", "prefix-good.kubernetes.io"));
    assert!(m("*.kubernetes.io/blah", "prefix.kubernetes.io/blah"));
    assert!(m("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar"));
    assert!(m(
        "*.kubernetes.io:1111/blah",
        "prefix.kubernetes.io:1111/blah"
    ));
    assert!(m(
        "prefix.*.io:1111/foo",
        "prefix.kubernetes.io:1111/foo/bar"
    ));
    assert!(!m("*.kubernetes.io", "kubernetes.io"));
    assert!(!m("*.*.kubernetes.io", "prefix.kubernetes.io"));
    assert!(!m("*.*.kubernetes.io", "kubernetes.io"));
    assert!(!m("*kubernetes.io", "a.kubernetes.io"));
    assert!(m("*kubernetes.io", "kubernetes.io"));
    assert!(m("*.*.*.kubernetes.io", "a.b.c.kubernetes.io"));
    assert!(!m("kubernetes.io", "kubernetes.com"));
    assert!(!m("k*.io", "quay.io"));
    assert!(!m(
        "*.kubernetes.io:1234/blah",
        "prefix.kubernetes.io:1111/blah"
    ));
    assert!(!m("prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar"));
}

#[test]
fn path_is_a_string_prefix() {
    assert!(m("bar.example.com/pong", "bar.example.com/pongz"));
    assert!(!m("bar.example.com/pong", "bar.example.com/pin"));
}

#[test]
fn glob_matches_like_go() {
    let ok = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
    assert_eq!(ok("abc", "abc"), Ok(true));
    assert_eq!(ok("*", "abc"), Ok(true));
    assert_eq!(ok("*c", "abc"), Ok(true));
    assert_eq!(ok("a*", "a"), Ok(true));
    assert_eq!(ok("a*/b", "abc/b"), Ok(true));
    assert_eq!(ok("a*/b", "a/c/b"), Ok(false));
    assert_eq!(ok("a*b*c*d*e*/f", "axbxcxdxe/f"), Ok(true));
    assert_eq!(ok("a*b?c*x", "abxbbxdbxebxczzx"), Ok(true));
    assert_eq!(ok("a*b?c*x", "abxbbxdbxebxczzy"), Ok(false));
    assert_eq!(ok("ab[c]", "abc"), Ok(true));
    assert_eq!(ok("ab[b-d]", "abc"), Ok(true));
    assert_eq!(ok("ab[e-g]", "abc"), Ok(false));
    assert_eq!(ok("ab[^c]", "abc"), Ok(false));
    assert_eq!(ok("ab[^b-d]", "abc"), Ok(false));
    assert_eq!(ok("ab[^e-g]", "abc"), Ok(true));
    assert_eq!(ok("a\\*b", "a*b"), Ok(true));
    assert_eq!(ok("a\\*b", "ab"), Ok(false));
    assert_eq!(ok("a?b", "a☺b"), Ok(true));
    assert_eq!(ok("a[^a]b", "a☺b"), Ok(true));
    assert_eq!(ok("a???b", "a☺b"), Ok(false));
    assert_eq!(ok("a[^a][^a][^a]b", "a☺b"), Ok(false));
    assert_eq!(ok("[a-ζ]*", "α"), Ok(true));
    assert_eq!(ok("*[a-ζ]", "A"), Ok(false));
    assert_eq!(ok("a?b", "a/b"), Ok(false));
    assert_eq!(ok("a*b", "a/b"), Ok(false));
    assert_eq!(ok("[\\]a]", "]"), Ok(true));
    assert_eq!(ok("[\\-]", "-"), Ok(true));
    assert_eq!(ok("[x\\-]", "x"), Ok(true));
    assert_eq!(ok("[x\\-]", "-"), Ok(true));
    assert_eq!(ok("[x\\-]", "z"), Ok(false));
    assert_eq!(ok("[\\-x]", "x"), Ok(true));
    assert_eq!(ok("[\\-x]", "a"), Ok(false));
    assert_eq!(ok("*x", "xxx"), Ok(true));
    // Go's ErrBadPattern cases
    for bad in [
        "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a*[",
    ] {
        assert_eq!(ok(bad, "a"), Err(MatchError::BadPattern), "{bad}");
    }
    assert_eq!(ok("a[", "x"), Err(MatchError::BadPattern));
    assert_eq!(ok("*x", "xxx"), Ok(true));
}

#[test]
fn malformed_patterns_never_match() {
    assert!(!m("a[.example.com", "a.example.com"));
    assert_eq!(
        pattern_problem(b"*.exa\\mple.com"),
        Some(MatchError::Url(
            "invalid character \"\\\\\" in host name".to_owned()
        ))
    );
    assert!(pattern_problem(b"*.example.com").is_none());
}

#[test]
fn go_url_parser_limits_host_globs() {
    // `?` starts the query, so `ex?mple.com` is the host `ex`.
    assert!(!m("ex?mple.com", "example.com"));
    // Current Go rejects `[` after the start of a host: no classes in keys.
    assert!(!m("prefix.[a-z].io", "prefix.b.io"));
    assert!(matches!(
        pattern_problem(b"prefix.[a-z].io"),
        Some(MatchError::Url(_))
    ));
    // `^` and `\` are invalid host characters.
    assert!(!m("a^b.io", "a^b.io"));
    // A bracketed IPv6 host with a port is split by SplitHostPort and compared exactly.
    assert!(m("[::1]:5000", "[::1]:5000/foo"));
    assert!(!m("[::1]:5000", "[::2]:5000/foo"));
    assert!(!m("[1.2.3.4]:5000", "[1.2.3.4]:5000/foo"));
    // Two colons outside brackets are rejected for https URLs.
    assert!(!m("a:1:2", "a:1:2"));
}

#[test]
fn config_keys_are_normalized_like_add() {
    let key = |s: &str| normalize_config_key(s.as_bytes()).map(|k| String::from_utf8(k).unwrap());
    assert_eq!(
        key("https://index.docker.io/v1/").unwrap(),
        "index.docker.io"
    );
    assert_eq!(key("https://quay.io/v1/").unwrap(), "quay.io");
    assert_eq!(key("http://quay.io/v2/").unwrap(), "quay.io");
    assert_eq!(key("bar.example.com/pong").unwrap(), "bar.example.com/pong");
    assert_eq!(key("https://*.docker.io/v1/").unwrap(), "*.docker.io");
    assert_eq!(
        key("https://*.docker.io/path:1111").unwrap(),
        "*.docker.io/path:1111"
    );
    assert_eq!(key("user:pw@registry.io").unwrap(), "registry.io");
    assert_eq!(key("registry.io/a?b#c").unwrap(), "registry.io/a");
    assert!(key("registry.io:port").is_err());
}

#[test]
fn default_registry_detection() {
    for (image, expected) in [
        ("foo/bar", true),
        ("docker.io/foo/bar", true),
        ("index.docker.io/foo/bar", true),
        ("foo", true),
        ("", false),
        ("registry.tld/foo/bar", false),
        ("registry:5000/foo/bar", false),
        ("myhostdocker.io/foo/bar", false),
    ] {
        assert_eq!(is_default_registry_match(image), expected, "{image}");
    }
}

#[test]
fn matcher_orders_like_kubelet() {
    let keys = [
        "bar.example.com/pong",
        "bar.example.com",
        "https://index.docker.io/v1/",
    ];
    let matcher = Matcher::new(&keys, KeyKind::ConfigKey, true);
    assert_eq!(matcher.lookup("bar.example.com/pong"), vec![0, 1]);
    assert_eq!(matcher.lookup("bar.example.com/pongz"), vec![0, 1]);
    assert_eq!(matcher.lookup("bar.example.com/ping"), vec![1]);
    // No slash: kubelet treats a bare name as a Docker Hub image and falls back.
    assert_eq!(matcher.lookup("example.com"), vec![2]);
    assert!(matcher.lookup("foo.example.com/x").is_empty());
    assert_eq!(matcher.lookup("docker.io/library/nginx"), vec![2]);
    assert_eq!(matcher.lookup("jenkins"), vec![2]);
    assert!(matcher.lookup("world.mesos.org/foo/bar").is_empty());
}

#[test]
fn matcher_agrees_with_linear_scan() {
    let keys = [
        "*.example.com",
        "a.example.com/x",
        "a.example.com",
        "*.*.com",
        "a.example.*",
        "a.example.com:5000",
        "*.example.com:5000/x",
        "a.example.com",
        "[bad.example.com",
        "a.example.com/xy",
    ];
    let matcher = Matcher::new(&keys, KeyKind::Pattern, false);
    for image in [
        "a.example.com/x/y",
        "a.example.com/xy",
        "b.example.com/x",
        "a.example.com:5000/x",
        "a.example.org/x",
        "example.com",
        "a.b.example.com",
    ] {
        assert_eq!(
            matcher.lookup(image),
            matcher.lookup_linear(image),
            "{image}"
        );
    }
    assert_eq!(
        matcher.lookup("a.example.com/xy"),
        vec![9, 1, 2, 7, 4, 0, 3]
    );
}
