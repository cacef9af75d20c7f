# Test conventions (STYLE.md): foo_test.c beside foo.c is a cmocka unit test; foo_fuzz.c is a
# libFuzzer target whose corpus (tests/fuzz/corpus/foo/) replays as an ordinary test in every build.

# ms_unit_tests(<dir> <libs...>): one ctest per *_test.c in <dir>.
function(ms_unit_tests dir)
  file(GLOB tests CONFIGURE_DEPENDS ${dir}/*_test.c)
  foreach(src ${tests})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE ${ARGN} PkgConfig::CMOCKA)
    add_test(NAME unit.${name} COMMAND ${name})
    set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120)
  endforeach()
endfunction()

# ms_fuzz_targets(<dir> <libs...>): one corpus-replay test per *_fuzz.c; with MS_FUZZ=ON and clang
# also a real libFuzzer binary (<name>_libfuzzer).
option(MS_FUZZ "Also build libFuzzer binaries (needs clang as C compiler)" OFF)
if(MS_FUZZ)
  # the libraries must carry coverage instrumentation too, or libFuzzer sees only the target file
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
function(ms_fuzz_targets dir)
  file(GLOB targets CONFIGURE_DEPENDS ${dir}/*_fuzz.c)
  foreach(src ${targets})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" base ${name})
    add_executable(${name}_replay ${src} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
    target_link_libraries(${name}_replay PRIVATE ${ARGN})
    add_test(NAME fuzz.${base} COMMAND ${name}_replay ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${base})
    set_tests_properties(fuzz.${base} PROPERTIES LABELS fuzz TIMEOUT 300)
    if(MS_FUZZ)
      add_executable(${name}_libfuzzer ${src})
      target_compile_options(${name}_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_options(${name}_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(${name}_libfuzzer PRIVATE ${ARGN})
    endif()
  endforeach()
endfunction()
