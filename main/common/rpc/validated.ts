/**
 * The same argument checks the RpcServer applies, for callers that hold the services in-process
 * (the CLI when no engine is running): every method call is parsed with its contract tuple first,
 * so the CLI behaves the same whether it talks to a running engine or hosts one.
 */
import { contract as defaultContract, type Contract, type ServiceName, type Services } from '../contract';
import type { ZodTuple } from 'zod';
import { parseArgs } from './server';

export function validatedServices(services: Services, contract: Contract = defaultContract): Services {
  const wrap = <K extends ServiceName>(name: K): Services[K] => {
    const target = services[name] as unknown as Record<string, unknown>;
    const methods = contract[name].methods as Readonly<Record<string, ZodTuple>>;
    return new Proxy(target, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown;
        if (typeof prop !== 'string' || !Object.hasOwn(methods, prop) || typeof value !== 'function') return value;
        return (...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(t, parseArgs(methods[prop]!, args, `${name}.${prop}`));
      },
    }) as unknown as Services[K];
  };
  const out: Partial<Record<ServiceName, unknown>> = {};
  for (const name of Object.keys(contract) as ServiceName[]) out[name] = wrap(name);
  return out as Services;
}
