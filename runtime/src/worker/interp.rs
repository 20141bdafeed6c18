//! The worker's interpreter: loads the prelude (`amber`) and deployed
//! modules, analyses a module's shape, runs one call.

use super::traceback::{format_exception, python_error};
use super::{interrupt, native, sandbox};
use crate::protocol::ModuleLoad;
use crate::RuntimeError;
use rustpython_vm::{
    builtins::{PyBaseExceptionRef, PyDictRef},
    compiler::Mode,
    scope::Scope,
    Interpreter, PyObjectRef, PyResult, VirtualMachine,
};
use std::collections::HashMap;

const PRELUDE_SOURCE: &str = include_str!("../prelude.py");
/// Python recursion limit inside procedures.
const RECURSION_LIMIT: usize = 400;

struct LoadedModule {
    generation: u64,
    module: PyObjectRef,
}

pub struct Worker {
    interp: Interpreter,
    loaded: HashMap<String, LoadedModule>,
}

impl Worker {
    pub fn new() -> Worker {
        let builder = Interpreter::builder(Default::default());
        let defs = rustpython_stdlib::stdlib_module_defs(&builder.ctx);
        let signals = interrupt::channel();
        let interp = builder
            .add_native_modules(&defs)
            .add_frozen_modules(rustpython_pylib::FROZEN_STDLIB)
            .init_hook(move |vm| vm.set_user_signal_channel(signals))
            .build();
        let worker = Worker {
            interp,
            loaded: HashMap::new(),
        };
        let setup = worker.interp.enter(|vm| -> PyResult<()> {
            native::install(vm)?;
            sandbox::install(vm, RECURSION_LIMIT)?;
            exec_module(vm, "amber", PRELUDE_SOURCE, None).map_err(|e| match e {
                ExecError::Python(exc) => exc,
                ExecError::Syntax(msg, _) => vm.new_runtime_error(msg),
            })?;
            Ok(())
        });
        let setup = setup.and_then(|()| worker.interp.enter(freeze_heap));
        if let Err(e) = setup {
            let text = worker
                .interp
                .enter(|vm| format_exception(vm, &e).1.unwrap_or_default());
            panic!("Amber prelude failed to load: {text}");
        }
        worker
    }

    /// The module's shape as JSON (catalog `ModuleShape`).
    pub fn analyze(&mut self, name: &str, source: &str) -> Result<String, RuntimeError> {
        self.interp.enter(|vm| {
            let module = match exec_module(vm, name, source, None) {
                Ok(m) => m,
                Err(ExecError::Syntax(message, line)) => {
                    return Err(RuntimeError::Syntax { message, line })
                }
                Err(ExecError::Python(exc)) => return Err(python_error(vm, &exc, "42P13")),
            };
            let json = call_prelude(vm, "_analyze", vec![module])
                .map_err(|exc| python_error(vm, &exc, "42P13"))?;
            json.try_into_value(vm)
                .map_err(|_| RuntimeError::Internal("_analyze returned a non-string".into()))
        })
    }

    /// Loads the module at `generation` unless it is loaded.
    pub fn prepare(
        &mut self,
        name: &str,
        generation: u64,
        load: Option<ModuleLoad>,
    ) -> Result<String, RuntimeError> {
        self.module_for(name, generation, load)
            .map(|_| String::new())
    }

    fn module_for(
        &mut self,
        name: &str,
        generation: u64,
        load: Option<ModuleLoad>,
    ) -> Result<PyObjectRef, RuntimeError> {
        if let Some(m) = self.loaded.get(name) {
            if m.generation == generation {
                return Ok(m.module.clone());
            }
        }
        let load = load.ok_or_else(|| {
            RuntimeError::Internal(format!(
                "module {name} generation {generation} is not loaded"
            ))
        })?;
        let module = self.interp.enter(|vm| {
            let module = match exec_module(vm, name, &load.source, Some(name)) {
                Ok(m) => m,
                Err(ExecError::Syntax(message, line)) => {
                    return Err(RuntimeError::Syntax { message, line })
                }
                Err(ExecError::Python(exc)) => return Err(python_error(vm, &exc, "P0001")),
            };
            call_prelude(
                vm,
                "_bind",
                vec![module.clone(), vm.ctx.new_str(load.shape_json).into()],
            )
            .map_err(|exc| python_error(vm, &exc, "XX000"))?;
            freeze_heap(vm).map_err(|exc| python_error(vm, &exc, "XX000"))?;
            Ok(module)
        })?;
        self.loaded.insert(
            name.to_string(),
            LoadedModule {
                generation,
                module: module.clone(),
            },
        );
        Ok(module)
    }

    /// Runs one call; its JSON result.
    pub fn call(
        &mut self,
        module: &str,
        generation: u64,
        desc_json: &str,
        args_json: &str,
    ) -> Result<String, RuntimeError> {
        let module = self.module_for(module, generation, None)?;
        self.interp.enter(|vm| {
            let out = call_prelude(
                vm,
                "_call",
                vec![
                    module,
                    vm.ctx.new_str(desc_json).into(),
                    vm.ctx.new_str(args_json).into(),
                ],
            )
            .map_err(|exc| python_error(vm, &exc, "P0001"))?;
            out.try_into_value(vm)
                .map_err(|_| RuntimeError::Internal("_call returned a non-string".into()))
        })
    }
}

enum ExecError {
    Syntax(String, usize),
    Python(PyBaseExceptionRef),
}

/// Compiles and runs `source` as module `name`. With `register`, the module
/// is placed in `sys.modules` (a deployed module); without, it is a scratch
/// module for analysis.
fn exec_module(
    vm: &VirtualMachine,
    name: &str,
    source: &str,
    register: Option<&str>,
) -> Result<PyObjectRef, ExecError> {
    let code = vm
        .compile(source, Mode::Exec, format!("<module {name}>"))
        .map_err(|e| {
            let (line, _col) = e.python_location();
            ExecError::Syntax(
                format!("syntax error in module {name}, line {line}: {e}"),
                line,
            )
        })?;
    let dict: PyDictRef = vm.ctx.new_dict();
    let module = vm.new_module(name, dict.clone(), None);
    // Source lines for tracebacks (never read from files: see
    // `traceback::format_traceback`).
    dict.set_item("__amber_source__", vm.ctx.new_str(source).into(), vm)
        .map_err(ExecError::Python)?;
    if name != "amber" {
        // Modules may name these in annotations without importing them.
        for pre in ["datetime", "decimal"] {
            let m = vm.import(pre, 0).map_err(ExecError::Python)?;
            dict.set_item(pre, m, vm).map_err(ExecError::Python)?;
        }
    }
    let modules = vm
        .sys_module
        .get_attr("modules", vm)
        .map_err(ExecError::Python)?;
    if name != "amber" {
        // Imports made by this module's code are checked by the sandbox.
        sandbox::mark_deployed(name);
    }
    if name == "amber" || register.is_some() {
        modules
            .set_item(name, module.clone().into(), vm)
            .map_err(ExecError::Python)?;
    }
    let scope = Scope::with_builtins(None, dict, vm);
    vm.run_code_obj(code, scope).map_err(ExecError::Python)?;
    Ok(module.into())
}

/// Moves every object alive now out of the cycle collector's reach (the
/// parent's heap is the same for every call): a call's child then collects
/// only what it created, instead of walking, and so copying, the whole
/// inherited heap.
fn freeze_heap(vm: &VirtualMachine) -> PyResult<()> {
    // From sys.modules: the sandbox's import gate refuses `gc` to anyone
    // without a module name, which includes this call.
    let gc = vm.sys_module.get_attr("modules", vm)?.get_item("gc", vm)?;
    gc.get_attr("collect", vm)?.call((), vm)?;
    gc.get_attr("freeze", vm)?.call((), vm)?;
    Ok(())
}

fn call_prelude(
    vm: &VirtualMachine,
    func: &'static str,
    args: Vec<PyObjectRef>,
) -> PyResult<PyObjectRef> {
    let amber = vm.import("amber", 0)?;
    let f = amber.get_attr(func, vm)?;
    f.call(args, vm)
}
