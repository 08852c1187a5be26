//! 200 empty isolated tests: what a container costs per test.

macro_rules! ten {
    ($($m:ident)*) => {$(
        mod $m {
            #[tinyo::isolated] fn t0() {}
            #[tinyo::isolated] fn t1() {}
            #[tinyo::isolated] fn t2() {}
            #[tinyo::isolated] fn t3() {}
            #[tinyo::isolated] fn t4() {}
            #[tinyo::isolated] fn t5() {}
            #[tinyo::isolated] fn t6() {}
            #[tinyo::isolated] fn t7() {}
            #[tinyo::isolated] fn t8() {}
            #[tinyo::isolated] fn t9() {}
        }
    )*};
}

ten!(m00 m01 m02 m03 m04 m05 m06 m07 m08 m09 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19);

tinyo::main!();
