//! The same 200 empty tests as plain `#[test]`s: the baseline.

macro_rules! ten {
    ($($m:ident)*) => {$(
        mod $m {
            #[test] fn t0() {}
            #[test] fn t1() {}
            #[test] fn t2() {}
            #[test] fn t3() {}
            #[test] fn t4() {}
            #[test] fn t5() {}
            #[test] fn t6() {}
            #[test] fn t7() {}
            #[test] fn t8() {}
            #[test] fn t9() {}
        }
    )*};
}

ten!(m00 m01 m02 m03 m04 m05 m06 m07 m08 m09 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19);
