//! `wmf_native`: the Python face of wmf-core. Every call takes and returns a whole
//! chunk; the GIL is released while the chunk is mapped. The typed boundary is
//! native/wmf_native.pyi (checked by mypy --strict with the Python callers).

use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyList, PyString};

use wmf_core::encode::{self, BatchIn, Body};
use wmf_core::{map_chunk as core_map_chunk, ChunkIn, Outcome, RecordIn, View};

/// Outcome codes in `MappedChunk.statuses`, one byte per record.
const MAPPED: u8 = 0;
const REJECTED: u8 = 1;
const DEFERRED: u8 = 2;

/// The result of `map_chunk`, columnar: index i of every list is record i.
#[pyclass(frozen, module = "wmf_native")]
struct MappedChunk {
    /// 0 mapped, 1 rejected, 2 deferred (map it with the reference engine).
    #[pyo3(get)]
    statuses: Py<PyBytes>,
    /// Event id ("" unless mapped).
    #[pyo3(get)]
    ids: Py<PyList>,
    /// Event time in epoch ms (0 unless mapped).
    #[pyo3(get)]
    times_ms: Py<PyList>,
    /// Canonical log type (None unless mapped).
    #[pyo3(get)]
    log_types: Py<PyList>,
    /// Per view (in the order asked), per record: the encoded document (b"" unless mapped).
    #[pyo3(get)]
    docs: Py<PyList>,
    /// (index, reason, detail) of each rejected record.
    #[pyo3(get)]
    rejections: Py<PyList>,
    #[pyo3(get)]
    deferred: usize,
}

/// Map one chunk: decode, detect, id, time and one document per view for each record.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the columns of one chunk, not options
#[pyo3(signature = (raws, log_types, source_times, partitions, offsets, views, source_id, now_ms))]
fn map_chunk(
    py: Python<'_>,
    raws: Vec<PyBackedBytes>,
    log_types: Vec<Option<Bound<'_, PyString>>>,
    source_times: Vec<f64>,
    partitions: Vec<Bound<'_, PyString>>,
    offsets: Vec<i64>,
    views: Vec<PyBackedStr>,
    source_id: Bound<'_, PyString>,
    now_ms: i64,
) -> PyResult<MappedChunk> {
    let n = raws.len();
    if log_types.len() != n
        || source_times.len() != n
        || partitions.len() != n
        || offsets.len() != n
    {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "map_chunk: every column must have one entry per record",
        ));
    }
    let mut parsed_views = Vec::with_capacity(views.len());
    for name in &views {
        match View::parse(name) {
            Some(view) => parsed_views.push(view),
            None => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "map_chunk: unknown view {:?}",
                    &**name
                )))
            }
        }
    }
    // A str that is not valid UTF-8 (a lone surrogate: a file name decoded with
    // surrogateescape) cannot reach Rust; its record is deferred, and the reference
    // gives its own per-record answer, instead of the whole chunk failing.
    let utf8 = |s: &Bound<'_, PyString>| PyBackedStr::try_from(s.clone()).ok();
    let source_id = utf8(&source_id);
    let mut unreadable = vec![source_id.is_none(); n];
    let log_types: Vec<Option<PyBackedStr>> = log_types
        .iter()
        .zip(&mut unreadable)
        .map(|(name, bad)| {
            let name = name.as_ref()?;
            let text = utf8(name);
            *bad |= text.is_none();
            text
        })
        .collect();
    let partitions: Vec<Option<PyBackedStr>> = partitions
        .iter()
        .zip(&mut unreadable)
        .map(|(partition, bad)| {
            let text = utf8(partition);
            *bad |= text.is_none();
            text
        })
        .collect();
    let mut out = py.detach(|| {
        let records = (0..n)
            .map(|i| RecordIn {
                raw: &raws[i],
                log_type: log_types[i].as_deref(),
                source_time: source_times[i],
                partition: partitions[i].as_deref().unwrap_or(""),
                offset: offsets[i],
            })
            .collect();
        let chunk = ChunkIn {
            records,
            views: parsed_views,
            source_id: source_id.as_deref().unwrap_or(""),
            now_ms,
        };
        core_map_chunk(&chunk)
    });
    for (outcome, bad) in out.outcomes.iter_mut().zip(&unreadable) {
        if *bad && *outcome != Outcome::Deferred {
            *outcome = Outcome::Deferred;
            out.deferred += 1;
        }
    }

    // Columns gather in Vecs and become lists whole; the six log type names are
    // made once per chunk rather than once per record.
    let mut statuses = Vec::with_capacity(n);
    let mut ids: Vec<Bound<'_, PyString>> = Vec::with_capacity(n);
    let mut times: Vec<i64> = Vec::with_capacity(n);
    let mut types: Vec<Option<Bound<'_, PyString>>> = Vec::with_capacity(n);
    let mut per_view: Vec<Vec<Bound<'_, PyBytes>>> =
        views.iter().map(|_| Vec::with_capacity(n)).collect();
    let rejections = PyList::empty(py);
    let empty = PyBytes::new(py, b"");
    let blank = PyString::new(py, "");
    let mut names: Vec<(&'static str, Bound<'_, PyString>)> = Vec::new();
    for (index, outcome) in out.outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Mapped(mapped) => {
                statuses.push(MAPPED);
                ids.push(PyString::new(py, &mapped.id));
                times.push(mapped.time_ms);
                let name = match names.iter().find(|(known, _)| *known == mapped.log_type) {
                    Some((_, name)) => name.clone(),
                    None => {
                        let name = PyString::new(py, mapped.log_type);
                        names.push((mapped.log_type, name.clone()));
                        name
                    }
                };
                types.push(Some(name));
                for (column, doc) in per_view.iter_mut().zip(mapped.docs) {
                    column.push(PyBytes::new(py, &doc));
                }
            }
            other => {
                match other {
                    Outcome::Rejected { reason, detail } => {
                        statuses.push(REJECTED);
                        rejections.append((index, reason, detail))?;
                    }
                    _ => statuses.push(DEFERRED),
                }
                ids.push(blank.clone());
                times.push(0);
                types.push(None);
                for column in &mut per_view {
                    column.push(empty.clone());
                }
            }
        }
    }
    let ids = PyList::new(py, ids)?;
    let times = PyList::new(py, times)?;
    let types = PyList::new(py, types)?;
    let per_view = per_view
        .into_iter()
        .map(|column| PyList::new(py, column))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(MappedChunk {
        statuses: PyBytes::new(py, &statuses).unbind(),
        ids: ids.unbind(),
        times_ms: times.unbind(),
        log_types: types.unbind(),
        docs: PyList::new(py, per_view)?.unbind(),
        rejections: rejections.unbind(),
        deferred: out.deferred,
    })
}

/// The columns of one sink batch, borrowed for the time the GIL is released.
struct BatchColumns {
    docs: Vec<PyBackedBytes>,
    ids: Vec<PyBackedStr>,
    times: Vec<f64>,
    prefixes: Vec<PyBackedBytes>,
    prefix_of: Vec<usize>,
}

impl BatchColumns {
    fn check(&self) -> PyResult<()> {
        let n = self.docs.len();
        if self.ids.len() != n || self.times.len() != n || self.prefix_of.len() != n {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "every column must have one entry per event",
            ));
        }
        if self.prefixes.is_empty() || self.prefix_of.iter().any(|&p| p >= self.prefixes.len()) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "prefix_of must index into a non-empty prefixes",
            ));
        }
        Ok(())
    }

    fn encode(&self, py: Python<'_>, how: impl Fn(&BatchIn<'_>) -> Body + Send + Sync) -> Body {
        py.detach(|| {
            let docs: Vec<&[u8]> = self.docs.iter().map(|d| &**d).collect();
            let ids: Vec<&str> = self.ids.iter().map(|i| &**i).collect();
            let prefixes: Vec<&[u8]> = self.prefixes.iter().map(|p| &**p).collect();
            how(&BatchIn {
                docs: &docs,
                ids: &ids,
                times: &self.times,
                prefixes: &prefixes,
                prefix_of: &self.prefix_of,
            })
        })
    }
}

fn body_to_python(py: Python<'_>, body: Body) -> (Py<PyBytes>, Vec<usize>) {
    (PyBytes::new(py, &body.bytes).unbind(), body.offsets)
}

/// Splunk HEC envelopes of a batch: (body, n + 1 offsets of the events in it).
#[pyfunction]
fn hec_events(
    py: Python<'_>,
    docs: Vec<PyBackedBytes>,
    ids: Vec<PyBackedStr>,
    times: Vec<f64>,
    prefixes: Vec<PyBackedBytes>,
    prefix_of: Vec<usize>,
) -> PyResult<(Py<PyBytes>, Vec<usize>)> {
    let columns = BatchColumns {
        docs,
        ids,
        times,
        prefixes,
        prefix_of,
    };
    columns.check()?;
    let body = columns.encode(py, encode::hec_events);
    Ok(body_to_python(py, body))
}

/// Elasticsearch bulk `create` lines of a batch: (body, n + 1 offsets).
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the columns of one batch, not options
fn es_bulk(
    py: Python<'_>,
    docs: Vec<PyBackedBytes>,
    ids: Vec<PyBackedStr>,
    times: Vec<f64>,
    prefixes: Vec<PyBackedBytes>,
    prefix_of: Vec<usize>,
    stamp: bool,
) -> PyResult<(Py<PyBytes>, Vec<usize>)> {
    let columns = BatchColumns {
        docs,
        ids,
        times,
        prefixes,
        prefix_of,
    };
    columns.check()?;
    let body = columns.encode(py, |batch| encode::es_bulk(batch, stamp));
    Ok(body_to_python(py, body))
}

#[pymodule]
fn wmf_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add("MAPPED", MAPPED)?;
    m.add("REJECTED", REJECTED)?;
    m.add("DEFERRED", DEFERRED)?;
    m.add_class::<MappedChunk>()?;
    m.add_function(wrap_pyfunction!(map_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(hec_events, m)?)?;
    m.add_function(wrap_pyfunction!(es_bulk, m)?)?;
    Ok(())
}
