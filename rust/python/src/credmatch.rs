//! Python bindings for kubelet's credential-key matching.

use ocistore_core::credmatch::{self, KeyKind, Matcher};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

/// Batches with fewer images than this are matched without releasing the GIL.
const DETACH_THRESHOLD: usize = 16;

/// Whether kubelet would use credentials keyed `pattern` for `image` (`URLsMatchStr`).
#[pyfunction]
fn url_matches(pattern: &str, image: &str) -> bool {
    credmatch::urls_match(pattern, image)
}

/// Why kubelet can never match with `pattern` (Go URL parse error or malformed glob), or None.
#[pyfunction]
fn url_match_problem(pattern: &str) -> Option<String> {
    credmatch::pattern_problem(pattern.as_bytes()).map(|err| err.to_string())
}

/// The key kubelet files a docker-config entry under, or None when kubelet ignores the entry.
#[pyfunction]
fn normalize_config_key(location: &str) -> Option<String> {
    credmatch::normalize_config_key(location.as_bytes())
        .ok()
        .map(|key| String::from_utf8_lossy(&key).into_owned())
}

/// kubelet's `isDefaultRegistryMatch`: whether an image name means Docker Hub.
#[pyfunction]
fn is_default_registry_match(image: &str) -> bool {
    credmatch::is_default_registry_match(image)
}

/// Compiled keys answering "which entries match this image?" in kubelet's order.
#[pyclass(module = "ocistore._core", frozen)]
pub struct CredentialMatcher {
    matcher: Matcher,
}

#[pymethods]
impl CredentialMatcher {
    #[new]
    #[pyo3(signature = (patterns, *, config_keys = false, docker_hub_fallback = false))]
    fn new(
        py: Python<'_>,
        patterns: Vec<String>,
        config_keys: bool,
        docker_hub_fallback: bool,
    ) -> Self {
        let kind = if config_keys {
            KeyKind::ConfigKey
        } else {
            KeyKind::Pattern
        };
        let matcher = py.detach(|| Matcher::new(&patterns, kind, docker_hub_fallback));
        CredentialMatcher { matcher }
    }

    /// Indices of the entries matching `image`, in the order kubelet tries them.
    fn lookup(&self, image: &str) -> Vec<u32> {
        self.matcher.lookup(image)
    }

    /// `lookup` for many images at once, with the GIL released.
    fn lookup_many(&self, py: Python<'_>, images: Vec<String>) -> Vec<Vec<u32>> {
        let run = || {
            images
                .iter()
                .map(|image| self.matcher.lookup(image))
                .collect()
        };
        if images.len() < DETACH_THRESHOLD {
            run()
        } else {
            py.detach(run)
        }
    }

    /// The key entry `index` is matched under (normalized for config keys), or None if ignored.
    fn key(&self, index: usize) -> PyResult<Option<String>> {
        self.check(index)?;
        Ok(self
            .matcher
            .key(index)
            .ok()
            .map(|key| String::from_utf8_lossy(key).into_owned()))
    }

    /// Why entry `index` can never match, or None.
    fn problem(&self, index: usize) -> PyResult<Option<String>> {
        self.check(index)?;
        Ok(self.matcher.problem(index).map(|err| err.to_string()))
    }

    fn __len__(&self) -> usize {
        self.matcher.len()
    }

    fn __repr__(&self) -> String {
        format!("CredentialMatcher(<{} keys>)", self.matcher.len())
    }
}

impl CredentialMatcher {
    fn check(&self, index: usize) -> PyResult<()> {
        if index < self.matcher.len() {
            Ok(())
        } else {
            Err(PyIndexError::new_err("entry index out of range"))
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CredentialMatcher>()?;
    m.add_function(wrap_pyfunction!(url_matches, m)?)?;
    m.add_function(wrap_pyfunction!(url_match_problem, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_config_key, m)?)?;
    m.add_function(wrap_pyfunction!(is_default_registry_match, m)?)?;
    Ok(())
}
