//! `wmf_native`: the Python face of wmf-core. Every call takes and returns a whole
//! chunk; the GIL is released while the chunk is mapped. The typed boundary is
//! native/wmf_native.pyi (checked by mypy --strict with the Python callers).

use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyList, PyString};

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
    log_types: Vec<Option<PyBackedStr>>,
    source_times: Vec<f64>,
    partitions: Vec<PyBackedStr>,
    offsets: Vec<i64>,
    views: Vec<PyBackedStr>,
    source_id: PyBackedStr,
    now_ms: i64,
) -> PyResult<MappedChunk> {
    let n = raws.len();
    if log_types.len() != n || source_times.len() != n || partitions.len() != n || offsets.len() != n
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
    let out = py.detach(|| {
        let records = (0..n)
            .map(|i| RecordIn {
                raw: &raws[i],
                log_type: log_types[i].as_deref(),
                source_time: source_times[i],
                partition: &partitions[i],
                offset: offsets[i],
            })
            .collect();
        let chunk = ChunkIn {
            records,
            views: parsed_views,
            source_id: &source_id,
            now_ms,
        };
        core_map_chunk(&chunk)
    });

    let mut statuses = Vec::with_capacity(n);
    let ids = PyList::empty(py);
    let times = PyList::empty(py);
    let types = PyList::empty(py);
    let per_view: Vec<Bound<'_, PyList>> = views.iter().map(|_| PyList::empty(py)).collect();
    let rejections = PyList::empty(py);
    let empty = PyBytes::new(py, b"");
    let blank = PyString::new(py, "");
    for (index, outcome) in out.outcomes.into_iter().enumerate() {
        match outcome {
            Outcome::Mapped(mapped) => {
                statuses.push(MAPPED);
                ids.append(mapped.id)?;
                times.append(mapped.time_ms)?;
                types.append(mapped.log_type)?;
                for (list, doc) in per_view.iter().zip(mapped.docs) {
                    list.append(PyBytes::new(py, &doc))?;
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
                ids.append(&blank)?;
                times.append(0)?;
                types.append(py.None())?;
                for list in &per_view {
                    list.append(&empty)?;
                }
            }
        }
    }
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

#[pymodule]
fn wmf_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add("MAPPED", MAPPED)?;
    m.add("REJECTED", REJECTED)?;
    m.add("DEFERRED", DEFERRED)?;
    m.add_class::<MappedChunk>()?;
    m.add_function(wrap_pyfunction!(map_chunk, m)?)?;
    Ok(())
}
