// zod compiles fast object parsers with `new Function` when it can, and decides so while the schemas
// are built at import time. The CSP forbids eval (and reports every attempt), so switch that off
// before any schema module is evaluated: main.tsx imports this module first.
import { z } from 'zod';

z.config({ jitless: true });
