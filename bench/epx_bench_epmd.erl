%% An EPMD module for `make bench`: the node finds one chosen peer at a
%% relay's port instead of that peer's own, so that socat, haproxy or a
%% minimal relay can be put in the path of real distribution traffic.
%% Started with `-epmd_module epx_bench_epmd -epx_bench_relay Name Port`;
%% every other lookup and the node's own registration go to OTP's erl_epmd.
-module(epx_bench_epmd).
-export([start_link/0, register_node/2, register_node/3, port_please/2, port_please/3,
         names/0, names/1, address_please/3, listen_port_please/2]).

start_link() -> erl_epmd:start_link().
register_node(Name, Port) -> erl_epmd:register_node(Name, Port).
register_node(Name, Port, Family) -> erl_epmd:register_node(Name, Port, Family).
names() -> erl_epmd:names().
names(Host) -> erl_epmd:names(Host).
address_please(Name, Host, Family) -> erl_epmd:address_please(Name, Host, Family).
listen_port_please(Name, Host) -> erl_epmd:listen_port_please(Name, Host).

port_please(Name, Host) -> port_please(Name, Host, infinity).

%% The relay's port for the chosen peer, with distribution version 6.
port_please(Name, Host, Timeout) ->
    case init:get_argument(epx_bench_relay) of
        {ok, [[Peer, Port]]} when Peer =:= Name -> {port, list_to_integer(Port), 6};
        _ -> erl_epmd:port_please(Name, Host, Timeout)
    end.
