//! Python exceptions as SQL errors: the message, the SQLSTATE and a
//! traceback formatted here, never by RustPython's printer (which reads
//! source lines from whatever file a code object names).

use crate::RuntimeError;
use rustpython_vm::{builtins::PyBaseExceptionRef, AsObject, PyObjectRef, VirtualMachine};

/// (message as `Type: text`, traceback)
pub(crate) fn format_exception(
    vm: &VirtualMachine,
    exc: &PyBaseExceptionRef,
) -> (String, Option<String>) {
    let class = exc.class().name().to_string();
    let text = exc
        .as_object()
        .str(vm)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        class
    } else {
        format!("{class}: {text}")
    };
    let detail = Some(shorten_traceback(&format_traceback(vm, exc, &message)));
    (message, detail)
}

/// Frames a traceback shows at most (the innermost are cut).
const TRACEBACK_FRAMES_MAX: usize = 200;

/// The traceback as Python prints it, but never reading a file: RustPython's
/// own printer reads the source line of each frame from the file its code
/// object names, so a code object naming `/etc/passwd` put that file's lines
/// into the error. Source lines come only from deployed modules' own
/// source (`__amber_source__` in the module's globals).
fn format_traceback(vm: &VirtualMachine, exc: &PyBaseExceptionRef, message: &str) -> String {
    use std::fmt::Write;
    let mut out = String::from("Traceback (most recent call last):\n");
    let text = |o: PyObjectRef| -> String {
        o.str(vm)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut tb = exc.as_object().get_attr("__traceback__", vm).ok();
    let mut frames = 0;
    while let Some(t) = tb.take().filter(|t| !vm.is_none(t)) {
        if frames == TRACEBACK_FRAMES_MAX {
            out.push_str("  ...\n");
            break;
        }
        frames += 1;
        let frame = t.get_attr("tb_frame", vm).ok();
        let code = frame.as_ref().and_then(|f| f.get_attr("f_code", vm).ok());
        let file = code
            .as_ref()
            .and_then(|c| c.get_attr("co_filename", vm).ok())
            .map(text)
            .unwrap_or_default();
        let name = code
            .as_ref()
            .and_then(|c| c.get_attr("co_name", vm).ok())
            .map(text)
            .unwrap_or_default();
        let line: usize = t
            .get_attr("tb_lineno", vm)
            .ok()
            .and_then(|l| l.try_into_value(vm).ok())
            .unwrap_or(0);
        let _ = writeln!(out, "  File \"{file}\", line {line}, in {name}");
        if file.starts_with("<module ") {
            let source = frame
                .and_then(|f| f.get_attr("f_globals", vm).ok())
                .and_then(|g| g.get_item("__amber_source__", vm).ok())
                .map(text);
            if let Some(src) = source.and_then(|s| {
                s.lines()
                    .nth(line.saturating_sub(1))
                    .map(|l| l.trim().to_string())
            }) {
                if !src.is_empty() {
                    let _ = writeln!(out, "    {src}");
                }
            }
        }
        tb = t.get_attr("tb_next", vm).ok();
    }
    out.push_str(message);
    out
}

/// Keeps the head and the innermost frames of a long traceback (deep
/// recursion would otherwise send thousands of lines).
fn shorten_traceback(tb: &str) -> String {
    const HEAD_LINES: usize = 3;
    const TAIL_LINES: usize = 30;
    let lines: Vec<&str> = tb.lines().collect();
    if lines.len() <= HEAD_LINES + TAIL_LINES {
        return tb.trim_end().to_string();
    }
    let mut out: Vec<String> = lines[..HEAD_LINES].iter().map(|l| l.to_string()).collect();
    out.push(format!(
        "  ... {} lines omitted ...",
        lines.len() - HEAD_LINES - TAIL_LINES
    ));
    out.extend(
        lines[lines.len() - TAIL_LINES..]
            .iter()
            .map(|l| l.to_string()),
    );
    out.join("\n")
}

pub(crate) fn python_error(
    vm: &VirtualMachine,
    exc: &PyBaseExceptionRef,
    default_state: &str,
) -> RuntimeError {
    let (mut message, detail) = format_exception(vm, exc);
    let mut sqlstate = default_state.to_string();
    if exc.class().name().to_string() == "KeyboardInterrupt" {
        // Raised by the watchdog, never by user code (BaseException, so a
        // bare `except Exception` does not swallow it).
        let text = exc
            .as_object()
            .str(vm)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reason = if text.contains("user request") {
            "user request"
        } else {
            "statement timeout"
        };
        return RuntimeError::python("57014", format!("canceling statement due to {reason}"));
    }
    // amber.Error(sqlstate, message) picks the SQLSTATE and a bare message.
    if let Ok(state) = exc.as_object().get_attr("sqlstate", vm) {
        if let Ok(s) = state.str(vm) {
            let s = s.to_string_lossy().into_owned();
            if s.len() == 5 && s.chars().all(|c| c.is_ascii_alphanumeric()) {
                sqlstate = s;
                if let Ok(m) = exc
                    .as_object()
                    .get_attr("message", vm)
                    .and_then(|m| m.str(vm))
                {
                    message = m.to_string_lossy().into_owned();
                }
            }
        }
    }
    RuntimeError::Python {
        sqlstate,
        message,
        detail,
    }
}
