//! The Vigie rule SDK for Rust (rule ABI v1, rules/ABI.md), for
//! wasm32-unknown-unknown with std, and no crates: a rule includes this
//! file as a module and registers itself.
//!
//! ```ignore
//! #[path = "../vigie.rs"] mod vigie;
//! vigie::rule!(MANIFEST, Some(init), eval);
//! ```
//!
//! Build (Debian's rustc and libstd-rust-dev-wasm32):
//! `rustc --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib -O -C panic=abort -C strip=symbols -o rule.wasm rule.rs`
//!
//! Memory: what the host allocates and the output buffers of a cycle are
//! kept alive until the next cycle starts (the first vigie_alloc after a
//! vigie_eval), then given back to Rust's allocator, which reuses them.
#![allow(dead_code)]

use std::cell::RefCell;

pub const BOOL: u32 = 1;
pub const INT32: u32 = 2;
pub const INT64: u32 = 3;
pub const FLOAT64: u32 = 4;
pub const UTF8: u32 = 5;
pub const TIMESTAMP_US: u32 = 6;
pub const DATE32: u32 = 7;

const TYPE_NAMES: [&str; 8] = ["?", "bool", "int32", "int64", "float64", "utf8", "timestamp_us", "date32"];

#[link(wasm_import_module = "vigie")]
extern "C" {
    #[link_name = "fail"]
    fn host_fail(ptr: *const u8, len: u32);
}

/// The rule: manifest, optional init, eval.
pub struct Rule {
    pub manifest: &'static str,
    pub init: Option<fn(&Params) -> Result<(), String>>,
    pub eval: fn(&Input, &mut Output) -> Result<(), String>,
}

/// Defines the ABI exports for a rule.
#[macro_export]
macro_rules! rule {
    ($manifest:expr, $init:expr, $eval:expr) => {
        static RULE: vigie::Rule = vigie::Rule { manifest: $manifest, init: $init, eval: $eval };
        #[no_mangle]
        pub extern "C" fn vigie_abi_version() -> i32 { 1 }
        #[no_mangle]
        pub extern "C" fn vigie_manifest() -> i64 { vigie::manifest(&RULE) }
        #[no_mangle]
        pub extern "C" fn vigie_alloc(size: u32) -> u32 { vigie::alloc(size) }
        #[no_mangle]
        pub extern "C" fn vigie_init(ptr: u32, len: u32) -> i32 { vigie::init(&RULE, ptr, len) }
        #[no_mangle]
        pub extern "C" fn vigie_eval(input: u32, output: u32) -> i32 { vigie::eval(&RULE, input, output) }
    };
}

// ---- cycle memory ------------------------------------------------------------

struct State {
    keep: Vec<Vec<u64>>, // buffers of the current cycle
    evaluated: bool,
    error: Vec<u8>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State { keep: Vec::new(), evaluated: false, error: Vec::new() });
}

/// Zeroed, 8-byte aligned bytes valid until the next cycle.
fn keep(n: usize) -> *mut u8 {
    let mut v = vec![0u64; (n + 7) / 8 + 1];
    let p = v.as_mut_ptr() as *mut u8;
    STATE.with(|s| s.borrow_mut().keep.push(v));
    p
}

pub fn manifest(r: &Rule) -> i64 {
    (((r.manifest.as_ptr() as u64) << 32) | r.manifest.len() as u64) as i64
}

pub fn alloc(size: u32) -> u32 {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.evaluated {
            s.keep.clear();
            s.evaluated = false;
        }
    });
    keep(size as usize) as u32
}

fn finish(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(msg) => {
            let p = keep(msg.len());
            unsafe {
                std::ptr::copy_nonoverlapping(msg.as_ptr(), p, msg.len());
                host_fail(p, msg.len() as u32);
            }
            1
        }
    }
}

pub fn init(r: &Rule, ptr: u32, len: u32) -> i32 {
    let json = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
    let p = Params { json: std::str::from_utf8(json).unwrap_or("{}") };
    finish(match r.init {
        Some(f) => f(&p),
        None => Ok(()),
    })
}

pub fn eval(r: &Rule, input: u32, output: u32) -> i32 {
    STATE.with(|s| s.borrow_mut().evaluated = true);
    let input = Input { ptr: input as *const u32 };
    let mut out = Output::open(output as *mut u32);
    INPUT_ERROR.with(|e| *e.borrow_mut() = None);
    let (want, what) = if input.word(3) != 0 { (input.num_groups(), "groups") } else { (input.rows(), "rows") };
    if out.rows() != want {
        return finish(Err(format!("output rows differ from input {}", what)));
    }
    let res = (r.eval)(&input, &mut out)
        .and_then(|_| INPUT_ERROR.with(|e| e.borrow_mut().take()).map_or(Ok(()), Err))
        .and_then(|_| out.error.take().map_or(Ok(()), Err));
    if res.is_ok() {
        out.close();
    }
    finish(res)
}

// ---- parameters ------------------------------------------------------------------

/// The parameters: a flat JSON object from the host.
pub struct Params {
    json: &'static str,
}

impl Params {
    /// The raw JSON text of the value of name.
    pub fn raw(&self, name: &str) -> Option<&str> {
        let b = self.json.as_bytes();
        let mut i = 0;
        let ws = |i: &mut usize| while *i < b.len() && b[*i].is_ascii_whitespace() { *i += 1 };
        let skip_string = |mut i: usize| {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' { i += 1 }
                i += 1
            }
            i + 1
        };
        ws(&mut i);
        if i >= b.len() || b[i] != b'{' { return None }
        i += 1;
        loop {
            ws(&mut i);
            if i >= b.len() || b[i] != b'"' { return None }
            let ke = skip_string(i);
            let key = &self.json[i + 1..ke - 1];
            i = ke;
            ws(&mut i);
            if i >= b.len() || b[i] != b':' { return None }
            i += 1;
            ws(&mut i);
            let vs = i;
            let mut depth = 0;
            while i < b.len() {
                match b[i] {
                    b'"' => { i = skip_string(i); continue }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => break,
                    b'}' | b']' => depth -= 1,
                    b',' if depth == 0 => break,
                    _ => {}
                }
                i += 1;
            }
            if key == name { return Some(self.json[vs..i].trim()) }
            if i >= b.len() || b[i] != b',' { return None }
            i += 1;
        }
    }
    pub fn float64(&self, name: &str) -> Option<f64> { self.raw(name)?.parse().ok() }
    pub fn int64(&self, name: &str) -> Option<i64> { self.raw(name)?.parse().ok() }
    pub fn bool(&self, name: &str) -> Option<bool> { self.raw(name)?.parse().ok() }
}

// ---- inputs ---------------------------------------------------------------------

#[inline]
fn bit(bm: *const u8, i: usize) -> bool { unsafe { (*bm.add(i >> 3) >> (i & 7)) & 1 == 1 } }

thread_local! {
    /// The error of a typed input accessor, reported after eval.
    static INPUT_ERROR: RefCell<Option<String>> = RefCell::new(None);
}

/// The input batch: the manifest's inputs in order.
pub struct Input {
    ptr: *const u32,
}


impl Input {
    fn word(&self, i: usize) -> u32 { unsafe { *self.ptr.add(i) } }
    pub fn rows(&self) -> usize { self.word(0) as usize }
    /// Number of groups of a group rule's input, which is the number of
    /// output rows; 0 for a map rule.
    pub fn num_groups(&self) -> usize { if self.word(3) == 0 { 0 } else { self.word(2) as usize } }
    /// The rows of group g (0 <= g < num_groups()), contiguous, in the
    /// order the pipeline declares; a group may be empty. A g out of range
    /// gives an empty range and fails the evaluation.
    pub fn group(&self, g: usize) -> std::ops::Range<usize> {
        if g >= self.num_groups() {
            self.bad_group(g);
            return 0..0;
        }
        let (s, e) = (self.offset(g), self.offset(g + 1));
        if s > e || e > self.rows() {
            self.bad_group(g);
            return 0..0;
        }
        s..e
    }
    /// First row of group g, for 0 <= g <= num_groups() (group_start of
    /// num_groups() is rows()); checked as group.
    pub fn group_start(&self, g: usize) -> usize {
        if self.word(3) == 0 || g > self.num_groups() || self.offset(g) > self.rows() {
            self.bad_group(g);
            return 0;
        }
        self.offset(g)
    }
    fn offset(&self, g: usize) -> usize { unsafe { *(self.word(3) as *const u32).add(g) as usize } }
    fn bad_group(&self, g: usize) {
        let msg = format!("group {} does not exist or is past the last row (the batch has {} groups)", g, self.num_groups());
        INPUT_ERROR.with(|e| *e.borrow_mut() = Some(msg));
    }
    fn column<T>(&self, i: usize, t: u32) -> Column<T> {
        let bad = Column { validity: std::ptr::null(), data: std::ptr::null(), offsets: std::ptr::null(), bad: true, _t: std::marker::PhantomData };
        if i >= self.word(1) as usize {
            INPUT_ERROR.with(|e| *e.borrow_mut() = Some(format!("input {} does not exist", i)));
            return bad;
        }
        let d = 4 + 6 * i;
        let found = self.word(d);
        if found != t {
            INPUT_ERROR.with(|e| *e.borrow_mut() = Some(format!("input {} is {}, read as {}", i, TYPE_NAMES[found.min(7) as usize], TYPE_NAMES[t as usize])));
            return bad;
        }
        Column { validity: self.word(d + 1) as *const u8, data: self.word(d + 2) as *const u8, offsets: self.word(d + 3) as *const i32, bad: false, _t: std::marker::PhantomData }
    }
    pub fn bool(&self, i: usize) -> Column<bool> { self.column(i, BOOL) }
    pub fn int32(&self, i: usize) -> Column<i32> { self.column(i, INT32) }
    pub fn int64(&self, i: usize) -> Column<i64> { self.column(i, INT64) }
    pub fn float64(&self, i: usize) -> Column<f64> { self.column(i, FLOAT64) }
    pub fn utf8(&self, i: usize) -> Column<&'static str> { self.column(i, UTF8) }
    /// Microseconds since the Unix epoch, UTC.
    pub fn timestamp_us(&self, i: usize) -> Column<i64> { self.column(i, TIMESTAMP_US) }
    /// Days since the Unix epoch.
    pub fn date32(&self, i: usize) -> Column<i32> { self.column(i, DATE32) }
}


/// An input column of values of type T. A column read with the wrong type
/// reads as all null (and the evaluation fails).
pub struct Column<T> {
    validity: *const u8,
    data: *const u8,
    offsets: *const i32,
    bad: bool,
    _t: std::marker::PhantomData<T>,
}

impl<T> Column<T> {
    pub fn is_null(&self, row: usize) -> bool { self.bad || (!self.validity.is_null() && !bit(self.validity, row)) }
}

pub trait Value: Sized { fn read(c: &Column<Self>, row: usize) -> Self; }
macro_rules! fixed { ($($t:ty),*) => { $(impl Value for $t {
    fn read(c: &Column<$t>, row: usize) -> $t { if c.bad { return <$t>::default() } unsafe { *(c.data as *const $t).add(row) } }
})* } }
fixed!(i32, i64, f64);
impl Value for bool { fn read(c: &Column<bool>, row: usize) -> bool { !c.bad && bit(c.data, row) } }
impl Value for &'static str {
    fn read(c: &Column<&'static str>, row: usize) -> &'static str {
        if c.bad { return "" }
        unsafe {
            let (s, e) = (*c.offsets.add(row) as usize, *c.offsets.add(row + 1) as usize);
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(c.data.add(s), e - s))
        }
    }
}
impl<T: Value> Column<T> {
    pub fn value(&self, row: usize) -> T { T::read(self, row) }
    pub fn get(&self, row: usize) -> Option<T> { if self.is_null(row) { None } else { Some(self.value(row)) } }
}

// ---- outputs ---------------------------------------------------------------------

struct OutCol {
    desc: *mut u32,
    typ: u32,
    validity: Vec<u8>,
    data: Vec<u8>,
    offsets: Vec<i32>,
    next_row: usize,
}

/// The output batch: the manifest's outputs in order; every row starts
/// null. utf8 rows are written in non-decreasing row order.
pub struct Output {
    n: usize,
    cols: Vec<OutCol>,
    error: ErrorCell,
}
pub struct ErrorCell(RefCell<Option<String>>);
impl ErrorCell { fn take(&self) -> Option<String> { self.0.borrow_mut().take() } }

/// A typed view of an output column.
pub struct Out<'a, T> { o: &'a mut Output, i: usize, _t: std::marker::PhantomData<T> }

impl Output {
    fn open(ptr: *mut u32) -> Output {
        let (n, nc) = unsafe { (*ptr as usize, *ptr.add(1) as usize) };
        let cols = (0..nc).map(|i| {
            let desc = unsafe { ptr.add(4 + 6 * i) };
            let typ = unsafe { *desc };
            let width = match typ { BOOL => 0, INT32 | DATE32 => 4, UTF8 => 0, _ => 8 };
            let data_len = if typ == BOOL { (n + 7) / 8 } else { width * n };
            OutCol { desc, typ, validity: vec![0; (n + 7) / 8], data: vec![0; data_len],
                     offsets: if typ == UTF8 { vec![0; n + 1] } else { Vec::new() }, next_row: 0 }
        }).collect();
        Output { n, cols, error: ErrorCell(RefCell::new(None)) }
    }

    fn view<T>(&mut self, i: usize, t: u32) -> Out<'_, T> {
        if i >= self.cols.len() || self.cols[i].typ != t {
            *self.error.0.borrow_mut() = Some(format!("output {} is not {}", i, TYPE_NAMES[t as usize]));
        }
        Out { o: self, i, _t: std::marker::PhantomData }
    }
    pub fn rows(&self) -> usize { self.n }
    pub fn bool(&mut self, i: usize) -> Out<'_, bool> { self.view(i, BOOL) }
    pub fn int32(&mut self, i: usize) -> Out<'_, i32> { self.view(i, INT32) }
    pub fn int64(&mut self, i: usize) -> Out<'_, i64> { self.view(i, INT64) }
    pub fn float64(&mut self, i: usize) -> Out<'_, f64> { self.view(i, FLOAT64) }
    pub fn utf8(&mut self, i: usize) -> Out<'_, &str> { self.view(i, UTF8) }
    pub fn timestamp_us(&mut self, i: usize) -> Out<'_, i64> { self.view(i, TIMESTAMP_US) }
    pub fn date32(&mut self, i: usize) -> Out<'_, i32> { self.view(i, DATE32) }

    fn col(&mut self, i: usize, row: usize) -> Option<&mut OutCol> {
        if self.error.0.borrow().is_some() { return None }
        if row >= self.n {
            *self.error.0.borrow_mut() = Some(format!("output row {} is out of range ({} rows)", row, self.n));
            return None;
        }
        let c = &mut self.cols[i];
        c.validity[row >> 3] |= 1 << (row & 7);
        Some(c)
    }

    fn close(mut self) {
        for c in self.cols.iter_mut() {
            if c.typ == UTF8 {
                let end = c.data.len() as i32;
                for r in c.next_row..self.n { c.offsets[r + 1] = end }
            }
            let nulls = (0..self.n).filter(|&r| !bit(c.validity.as_ptr(), r)).count() as u32;
            let keep_bytes = |v: &[u8]| { let p = keep(v.len()); unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), p, v.len()) }; p as u32 };
            let validity = keep_bytes(&c.validity);
            let data = keep_bytes(&c.data);
            let offsets = if c.typ == UTF8 {
                let b = unsafe { std::slice::from_raw_parts(c.offsets.as_ptr() as *const u8, c.offsets.len() * 4) };
                keep_bytes(b)
            } else { 0 };
            unsafe {
                *c.desc.add(1) = validity;
                *c.desc.add(2) = data;
                *c.desc.add(3) = offsets;
                *c.desc.add(4) = c.data.len() as u32;
                *c.desc.add(5) = nulls;
            }
        }
    }
}

macro_rules! set_fixed { ($($t:ty),*) => { $(impl<'a> Out<'a, $t> {
    pub fn set(&mut self, row: usize, v: $t) {
        if let Some(c) = self.o.col(self.i, row) {
            let w = std::mem::size_of::<$t>();
            c.data[row * w..(row + 1) * w].copy_from_slice(&v.to_le_bytes());
        }
    }
})* } }
set_fixed!(i32, i64, f64);

impl<'a> Out<'a, bool> {
    pub fn set(&mut self, row: usize, v: bool) {
        if let Some(c) = self.o.col(self.i, row) {
            if v { c.data[row >> 3] |= 1 << (row & 7) } else { c.data[row >> 3] &= !(1 << (row & 7)) }
        }
    }
}

impl<'a, 'b> Out<'a, &'b str> {
    pub fn set(&mut self, row: usize, v: &str) {
        let n = self.o.n;
        if row < n && row < self.o.cols.get(self.i).map_or(0, |c| c.next_row) {
            *self.o.error.0.borrow_mut() = Some(format!("utf8 output row {} written out of order", row));
            return;
        }
        if let Some(c) = self.o.col(self.i, row) {
            let start = c.data.len() as i32;
            for r in c.next_row..row { c.offsets[r + 1] = start }
            c.data.extend_from_slice(v.as_bytes());
            c.offsets[row + 1] = c.data.len() as i32;
            c.next_row = row + 1;
        }
    }
}
