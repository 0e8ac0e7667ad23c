/**
 * The release of allot this build is: the CLI's `--version`, the `allot_build_info` metric, and the version both
 * services announce in their `$SRV` info. One constant, so the three never disagree.
 */
export const ALLOT_VERSION = '0.2.0';
