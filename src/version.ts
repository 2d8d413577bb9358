/** linkd's version, printed by `linkd --version`. */
export const VERSION = "0.1.0";
