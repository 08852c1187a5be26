// Shared by the benchmark targets: `tests!(attr tokens)` defines groups of empty tests
// `n100::…` (100 tests), `n500::…` (500) and `n2000::…` (2000), so a filter `nN::` selects N.

macro_rules! ten {
    ($m:ident, [$($attr:tt)*]) => {
        mod $m {
            $($attr)* fn t0() {}
            $($attr)* fn t1() {}
            $($attr)* fn t2() {}
            $($attr)* fn t3() {}
            $($attr)* fn t4() {}
            $($attr)* fn t5() {}
            $($attr)* fn t6() {}
            $($attr)* fn t7() {}
            $($attr)* fn t8() {}
            $($attr)* fn t9() {}
        }
    };
}

macro_rules! hundred {
    ($m:ident, $attr:tt) => {
        mod $m {
            ten!(a0, $attr); ten!(a1, $attr); ten!(a2, $attr); ten!(a3, $attr); ten!(a4, $attr);
            ten!(a5, $attr); ten!(a6, $attr); ten!(a7, $attr); ten!(a8, $attr); ten!(a9, $attr);
        }
    };
}

macro_rules! tests {
    ($attr:tt) => {
        mod n100 {
            hundred!(h00, $attr);
        }
        mod n500 {
            hundred!(h00, $attr); hundred!(h01, $attr); hundred!(h02, $attr); hundred!(h03, $attr); hundred!(h04, $attr);
        }
        mod n2000 {
            hundred!(h00, $attr); hundred!(h01, $attr); hundred!(h02, $attr); hundred!(h03, $attr); hundred!(h04, $attr);
            hundred!(h05, $attr); hundred!(h06, $attr); hundred!(h07, $attr); hundred!(h08, $attr); hundred!(h09, $attr);
            hundred!(h10, $attr); hundred!(h11, $attr); hundred!(h12, $attr); hundred!(h13, $attr); hundred!(h14, $attr);
            hundred!(h15, $attr); hundred!(h16, $attr); hundred!(h17, $attr); hundred!(h18, $attr); hundred!(h19, $attr);
        }
    };
}
